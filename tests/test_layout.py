"""The plan of the house, checked from the source: imports only go down, the launchers
are one file twice, and test modules share helpers without importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent


def imports_of(path: Path, package: str) -> set[str]:
    """The modules of `package` that the module at `path` imports, anywhere in it (in a
    function too: a lazy import is still a dependency)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from shim import log` imports the module shim.log
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    modules = {f"{package}.{file.stem}" for file in (ROOT / package).glob("*.py")}
    return {name for name in found if name in modules}


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of `graph` as a path that ends where it starts; [] when there is none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        path.append(node)
        for child in sorted(graph.get(node, ())):
            found = visit(child)
            if found:
                return found
        path.pop()
        done.add(node)
        return []

    for node in sorted(graph):
        found = visit(node)
        if found:
            return found
    return []


def test_no_module_of_shim_imports_one_that_imports_it_back() -> None:
    graph = {
        f"shim.{path.stem}": imports_of(path, "shim") - {"shim", f"shim.{path.stem}"}
        for path in (ROOT / "shim").glob("*.py")
    }
    assert "shim.lookup" in graph["shim.main"]  # the reader sees imports, so it can fail
    assert cycle_in(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_both_launchers_are_the_same_file() -> None:
    from shim import LAUNCHERS

    launchers = ROOT / "scripts" / "launchers"
    assert sorted(path.name for path in launchers.iterdir()) == sorted(LAUNCHERS)
    first, second = (launchers / name for name in LAUNCHERS)
    assert first.read_bytes() == second.read_bytes()
    assert b"from eks_token_shim_launcher import main" in first.read_bytes()


def test_no_test_module_imports_another() -> None:
    tests = ROOT / "tests"
    test_modules = {path.stem for path in tests.glob("test_*.py")}
    importing = {
        path.name: sorted(
            name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            if name in test_modules
        )
        for path in tests.glob("*.py")
    }
    assert {name: found for name, found in importing.items() if found} == {}


def test_the_test_command_runs_the_oldest_and_newest_python_the_package_claims() -> None:
    import re

    pyproject = (ROOT / "pyproject.toml").read_text()
    claimed = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    ends = sorted(claimed, key=lambda version: int(version.split(".")[1]))
    venv_script = (ROOT / "scripts" / "venv.sh").read_text()
    assert f"OLDEST_PYTHON={ends[0]}\n" in venv_script
    assert f"NEWEST_PYTHON={ends[-1]}\n" in venv_script
    assert f'requires-python = ">={ends[0]}"' in pyproject


def test_the_design_s_module_map_names_every_module_there_is() -> None:
    import re

    readme = (ROOT / "docs" / "design.md").read_text()
    mapped = set(re.findall(r"^\| `(shim/\w+\.py)`", readme, re.MULTILINE))
    mapped |= set(re.findall(r"`, `(shim/\w+\.py)` \|", readme))  # "| `a.py`, `b.py` |"
    modules = {f"shim/{path.name}" for path in (ROOT / "shim").glob("*.py")}
    assert mapped == modules - {"shim/__init__.py", "shim/__main__.py"}


def test_no_reference_a_reader_of_the_repository_cannot_follow() -> None:
    """Reasons in their own words: no issue numbers of a tracker the repository does not
    carry, no files outside it."""
    import re

    unfollowable = re.compile(r"\bissue\s+#\d|\(#\d+\)|\.\./shared/", re.IGNORECASE)
    files = [ROOT / name for name in ("README.md", "CHANGELOG.md", "CONTRIBUTING.md")]
    files += [ROOT / "pyproject.toml", *(ROOT / "docs").iterdir(), *(ROOT / ".github").rglob("*")]
    files += [*(ROOT / "scripts").rglob("*"), ROOT / ".ci" / "run", *(ROOT / "tools").iterdir()]
    for folder in ("shim", "tests"):
        files += (ROOT / folder).rglob("*.py")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        if path.is_file()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if unfollowable.search(line)
    ]
    assert found == []


# What macOS's BSD tools (and a machine without extras) lack: GNU `date -d` and `%N`,
# `readlink -f` before macOS 12.3, `stat -c`, `sed -i` without a suffix, `timeout`,
# `nproc`; and jq, which is no dependency of ours.
NOT_PORTABLE = "|".join(
    (
        r"\bdate\b[^|;\n]*(\s-d\b|%N)",
        r"\breadlink\s+-f",
        r"\bstat\s+-c",
        r"\bsed\s+-i\s",
        r"\btimeout\s",
        r"\bnproc\b",
        r"\bjq\b",
    )
)


def not_portable(text: str) -> list[str]:
    import re

    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if not line.startswith("#") and re.search(NOT_PORTABLE, line)]


def test_the_scripts_a_user_runs_need_no_gnu_tools_and_no_jq() -> None:
    """The demo, the test command and the package check run on macOS too. (scripts/bench
    measures the bash+jq+date cache it is compared with: that one is GNU's by design.)"""
    assert not_portable('t0=$(date +%s%N)\nx=$(date -u -d "+14 min")\njq -r .a f') != []
    scripts = ["demo", "test", "package-check", "fetch-kubectl", "venv.sh"]
    found = {name: not_portable((ROOT / "scripts" / name).read_text()) for name in scripts}
    assert found == {name: [] for name in scripts}


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading: lower case, punctuation dropped, each
    space a hyphen."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_in_the_docs_leads_somewhere_in_the_repository() -> None:
    """README, CONTRIBUTING, CHANGELOG and docs/ link to one another: each relative link
    names a file that is there, and a heading of it where it names one."""
    import re

    documents = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"]
    documents += sorted((ROOT / "docs").glob("*.md"))
    broken = []
    for document in documents:
        text = document.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            if not linked.exists():
                broken.append(f"{document.name}: {target} (no such file)")
            elif anchor:
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)
                if anchor not in {_anchor(heading) for heading in headings}:
                    broken.append(f"{document.name}: {target} (no such heading)")
    assert broken == []
    assert len(documents) > 5  # (docs/ is there)


def test_the_readme_is_read_in_five_minutes() -> None:
    """Under 200 lines: the rest is in docs/, where the README links."""
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


def test_an_older_python_is_told_which_python_the_package_needs() -> None:
    """pip on Python 3.8 would fail to install setuptools 77 with a resolver error: the
    build asks for setuptools only from 3.9 on, and its backend names the Python
    needed before it hands anything to setuptools."""
    import subprocess
    import sys

    backend = ROOT / "build_backend" / "eks_token_shim_build.py"
    as_on_38 = (
        "import sys; sys.version_info = (3, 8, 18, 'final', 0); "
        f"exec(compile(open({str(backend)!r}).read(), 'backend', 'exec'))"
    )
    older = subprocess.run(
        [sys.executable, "-c", as_on_38], capture_output=True, text=True, timeout=60
    )
    assert older.returncode == 1
    assert older.stderr.startswith("eks-token-shim requires Python >= 3.9; this is Python 3.8 (")
    # (On 3.9 and newer it is setuptools' backend: scripts/package-check builds with it.)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "requires = [\"setuptools>=77; python_version >= '3.9'\"]" in pyproject
    assert 'build-backend = "eks_token_shim_build"' in pyproject
