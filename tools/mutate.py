"""The mutation campaign: does the suite notice when the code is wrong?

Run it through tools/mutate, which prepares .mutate-venv: the project's
dependencies and launchers, but not the project itself, so that every `import shim`,
the launchers' and the detached refreshes' included, finds the worker's copy of the
source tree: through PYTHONPATH for the suite, and through MUTATE_TREE, which a .pth
file of .mutate-venv puts first on sys.path, for the shims the suite starts (they run
under -E, blind to PYTHONPATH). (A mutation in the source tree is invisible to a
suite that runs an installed copy: the trap mutmut 3's `mutants/` copy falls into.)

Each mutant changes one AST node of one module: a comparison flipped at its
boundary or negated, an operand of `and`/`or` dropped, a `not` dropped, a number
changed, `+`/`-` or `*`/`/` swapped, `min`/`max` swapped, a statement deleted. The
whole suite runs against it (`-x`: the first failure kills it) with a timeout, in a
copy of the tree (one per job), in its own process group, killed with everything it
started; the copy is restored before the next mutant. Log messages and docstrings
are not mutated. Survivors that change no behaviour are listed, each with a reason,
in tools/mutate-equivalent.txt.

A mutant is named by its content, not its line: the module, the function it is in,
the mutation, and the first line of the statement it changes as `ast.unparse` spells
it (no comments, no layout), e.g.

    shim/lock.py KeyLock.acquire [GtE->Gt] if deadline.passed():

so that moving code, or editing other lines, leaves the list of equivalents valid.
Two mutants with the same name get `#2`, `#3` after the mutation, in source order.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tools" / "mutate-equivalent.txt"
MAP_CACHE = ROOT / ".mutate-cache" / "map.json"  # the last test map and what it was made from
# The credential path: everything in shim/ but the kubeconfig editor.
NOT_CREDENTIAL_PATH = {
    "shim/kubeconfig.py",
    "shim/wrapping.py",
    "shim/allowlist.py",
    "shim/yamlfile.py",
    "shim/__main__.py",
}
FLIPS: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
DELETABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.If, ast.Return)
QUIET_CALLS = {"debug", "set_timestamps"}  # what only -v or the background log shows


class Mutant:
    """One change to one module: where (lines, function, statement), what, and the
    module's text with it."""

    def __init__(
        self, module: str, line: int, end: int, what: str, source: str, function: str, text: str
    ) -> None:
        self.module = module
        self.line = line
        self.end = end
        self.what = what
        self.source = source
        self.function = function  # the enclosing def/class names, dotted; "-" at module level
        self.text = text  # the first line of the changed statement, as ast.unparse spells it

    @property
    def ident(self) -> str:
        return f"{self.module} {self.function} [{self.what}] {self.text}"


def _skipped(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Docstrings, log calls for -v, `if TYPE_CHECKING:` blocks, annotations, __slots__."""
    current: ast.AST | None = node
    while current is not None:
        parent = parents.get(current)
        if isinstance(current, ast.If) and "TYPE_CHECKING" in ast.unparse(current.test):
            return True
        if isinstance(parent, (ast.arg, ast.AnnAssign)) and current is getattr(
            parent, "annotation", None
        ):
            return True
        if (
            isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef))
            and current is parent.returns
        ):
            return True
        if isinstance(current, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__slots__" for target in current.targets
        ):
            return True
        if _is_quiet(current) or (isinstance(current, ast.Expr) and _is_quiet(current.value)):
            return True
        if (
            isinstance(current, ast.If)
            and not current.orelse
            and all(isinstance(item, ast.Expr) and _is_quiet(item.value) for item in current.body)
        ):
            return True  # `if log.is_verbose(): log.debug(...)`
        current = parent
    return False


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _changes(node: ast.AST) -> list[tuple[str, object]]:
    """The mutations that apply to `node`: (description, how) pairs."""
    found: list[tuple[str, object]] = []
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        op = type(node.ops[0])
        if op in FLIPS:
            found.append((f"{op.__name__}->{FLIPS[op].__name__}", "flip"))
    elif isinstance(node, ast.BoolOp):
        for at in range(len(node.values)):
            found.append((f"{type(node.op).__name__} drops operand {at + 1}", ("drop", at)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        found.append(("not dropped", "unnot"))
    elif isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
        found.append((f"{type(node.op).__name__}->{SWAPS[type(node.op)].__name__}", "swap"))
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        value = node.value
        new = (not value) if isinstance(value, bool) else (1 if value == 0 else value + 1)
        found.append((f"{value!r}->{new!r}", ("const", new)))
    elif isinstance(node, ast.Name) and node.id in ("min", "max"):
        found.append((f"{node.id}->{'max' if node.id == 'min' else 'min'}", "minmax"))
    if isinstance(node, DELETABLE) and not _is_docstring(node):  # type: ignore[arg-type]
        found.append((f"{type(node).__name__} statement deleted", "delete"))
    return found


def _apply(node: ast.AST, how: object) -> ast.AST:
    """`node` changed as `how` says (a copy; the caller puts it in the tree)."""
    node = copy.deepcopy(node)
    if how == "flip":
        node.ops = [FLIPS[type(node.ops[0])]()]  # type: ignore[attr-defined]
    elif how == "unnot":
        return node.operand  # type: ignore[attr-defined,no-any-return]
    elif how == "swap":
        node.op = SWAPS[type(node.op)]()  # type: ignore[attr-defined]
    elif how == "minmax":
        node.id = "max" if node.id == "min" else "min"  # type: ignore[attr-defined]
    elif how == "delete":
        return ast.copy_location(ast.Pass(), node)
    elif isinstance(how, tuple) and how[0] == "drop":
        values = [value for at, value in enumerate(node.values) if at != how[1]]  # type: ignore[attr-defined]
        if len(values) == 1:
            return values[0]
        node.values = values  # type: ignore[attr-defined]
    elif isinstance(how, tuple) and how[0] == "const":
        node.value = how[1]  # type: ignore[attr-defined]
    return node


def mutants(module: str) -> list[Mutant]:
    """Every mutant of `module` (a path relative to the root), in source order."""
    text = (ROOT / module).read_text()
    tree = ast.parse(text)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    places = [
        (node, what, how)
        for node in ast.walk(tree)
        if not _skipped(node, parents)
        for what, how in _changes(node)
    ]
    found = []
    for node, what, how in places:
        if how == "delete" and not _in_function(node, parents):
            continue  # a module-level statement deleted breaks the import: noise, not a test
        if how == "delete" and _returns_none_at_the_end(node, parents):
            continue  # without it the function falls off its end: None all the same
        changed = _replace(tree, parents, node, _apply(node, how))
        line = getattr(node, "lineno", 0)
        end = getattr(node, "end_lineno", None) or line
        function, text = _place(node, parents)
        found.append(Mutant(module, line, end, what, ast.unparse(changed), function, text))
    found.sort(key=lambda mutant: mutant.line)
    seen: dict[str, int] = {}
    for mutant in found:  # two `0->1` in one statement: the second is `0->1 #2`
        seen[mutant.ident] = seen.get(mutant.ident, 0) + 1
        if seen[mutant.ident] > 1:
            mutant.what += f" #{seen[mutant.ident]}"
    return found


def _place(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[str, str]:
    """Where `node` is, by content: the dotted names of the defs and classes around it,
    and the first line of the statement it is in (ast.unparse: no comments, no layout)."""
    statement = node
    while not isinstance(statement, ast.stmt):
        statement = parents[statement]
    names = []
    current = parents.get(statement)
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(current.name)
        current = parents.get(current)
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        text = f"def {statement.name}" if not isinstance(statement, ast.ClassDef) else "class"
    else:
        text = ast.unparse(statement).splitlines()[0]
    return ".".join(reversed(names)) or "-", text


def _returns_none_at_the_end(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether `node` is a `return`/`return None` after which nothing but -v logging runs
    before the function's end (so that deleting it changes nothing but -v output)."""
    if not isinstance(node, ast.Return) or not (
        node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        return False
    current: ast.AST = node
    while True:
        parent = parents[current]
        block = next(
            value
            for _, value in ast.iter_fields(parent)
            if isinstance(value, list) and any(item is current for item in value)
        )
        after = block[next(at for at, item in enumerate(block) if item is current) + 1 :]
        if not all(isinstance(item, ast.Expr) and _is_quiet(item.value) for item in after):
            return False
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
        if isinstance(parent, ast.ExceptHandler):
            parent = parents[parent]
            if not isinstance(parent, ast.Try) or _returns(parent.finalbody):
                return False
        elif isinstance(parent, ast.Try):
            if block is not parent.body or parent.orelse or _returns(parent.finalbody):
                return False
        elif not isinstance(parent, (ast.If, ast.With)):
            return False  # a loop goes round again
        current = parent


def _returns(block: list[ast.stmt]) -> bool:
    """Whether a `finally:` block can change what the function returns."""
    return any(isinstance(node, ast.Return) for stmt in block for node in ast.walk(stmt))


def _is_quiet(node: ast.AST) -> bool:
    """A call of what only -v or the background log shows (log.debug...)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in QUIET_CALLS
    )


def _in_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    current = parents.get(node)
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
        current = parents.get(current)
    return False


def _replace(
    tree: ast.Module, parents: dict[ast.AST, ast.AST], old: ast.AST, new: ast.AST
) -> ast.Module:
    """A copy of `tree` with `old` replaced by `new` (found by identity through the parent)."""
    parent = parents[old]
    for field, value in ast.iter_fields(parent):
        if isinstance(value, list) and any(item is old for item in value):
            position = next(at for at, item in enumerate(value) if item is old)
            setattr(parent, field, [*value[:position], new, *value[position + 1 :]])
            result = copy.deepcopy(tree)
            setattr(parent, field, value)
            return result
        if value is old:
            setattr(parent, field, new)
            result = copy.deepcopy(tree)
            setattr(parent, field, old)
            return result
    raise LookupError("node not found under its parent")


# A mutant of process.py may signal a process group it never made (most likely how
# campaigns as root ended every process on this machine four times, a shell included:
# `os.killpg(1, SIGKILL)`). In a PID namespace of its own (and a /proc that shows it),
# pid 1 is the suite's own first process, and the namespace dies with it. Root only;
# without root, run campaigns detached.
SANDBOX = (
    ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("unshare")
    else []
)


def run_suite(
    tree: Path,
    venv_python: str,
    pytest_args: list[str],
    timeout: float,
    failed: list[str] | None = None,
    **extra_env: str,
) -> str:
    """Run the suite in `tree`: "survived", "killed", or "timeout" (killed too). The tests
    that failed are added to `failed` (read from pytest's summary, through a file: a pipe
    would stay open as long as anything the suite started lives)."""
    env = dict(os.environ, PYTHONPATH=str(tree), MUTATE_TREE=str(tree), PYTHONDONTWRITEBYTECODE="1")
    env["CI"] = "true"
    env.update(extra_env)
    output = tree.parent / f"{tree.name}.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [*SANDBOX, venv_python, "-m", *pytest_args],
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,  # a mutant must never get at a terminal
            stdout=out,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever it started, now or never
        process.wait()
    if failed is not None:
        for line in output.read_text(errors="replace").splitlines():
            if line.startswith(("FAILED ", "ERROR ")) and "::" in line:
                failed.append(line.split()[1])
    if code is None:
        return "timeout"
    return "survived" if code == 0 else "killed"


DURATIONS_PLUGIN = """
import json, os
_seconds = {}
def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration
def pytest_sessionfinish(session):
    with open(os.environ["MUTATE_DURATIONS"], "w") as out:
        json.dump(_seconds, out)
"""


class TestMap:
    """Which tests reach which line ("module:line" -> node ids), and what each test
    costs (seconds, from the same run): a mutant runs the tests that reach it,
    cheapest first, so that most mutants die in the first second or two."""

    def __init__(self, reached: dict[str, list[str]], seconds: dict[str, float]) -> None:
        self.reached = reached
        self.seconds = seconds

    def within(self, tests: list[str], budget: float) -> list[str]:
        """The first of `tests` whose measured seconds add up to at most `budget` (one at
        least): a cheaper campaign whose kill counts are lower bounds."""
        kept: list[str] = []
        spent = 0.0
        for test in tests:
            spent += self.seconds.get(test, 60.0)
            if kept and spent > budget:
                break
            kept.append(test)
        return kept

    def tests_for(self, mutant: Mutant) -> list[str]:
        lines = range(mutant.line, mutant.end + 1)
        tests = {test for line in lines for test in self.reached.get(f"{mutant.module}:{line}", ())}
        return sorted(tests, key=lambda test: (self.seconds.get(test, 60.0), test))


def sources_digest() -> str:
    """What the map depends on: the text of shim/, tests/, the project file and the docs
    (the tests read the reference and the module map)."""
    digest = hashlib.sha256()
    paths = [*ROOT.glob("shim/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("docs/*.md")]
    paths += [ROOT / "pyproject.toml", ROOT / "README.md"]
    for path in sorted(paths):
        digest.update(f"{path.relative_to(ROOT)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached_map(digest: str) -> TestMap | None:
    """The saved test map, if it was made from sources of this `digest` (the suite passed
    on them then: a map is only saved after a passing unmutated run)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        saved = json.loads(MAP_CACHE.read_text())
        if saved["digest"] == digest:
            return TestMap(saved["reached"], saved["seconds"])
    return None


def save_map(test_map: TestMap, digest: str) -> None:
    """Keep `test_map` for the next campaign, under the digest of the sources it was made
    from (taken before the trees were copied: the sources may change during the run)."""
    MAP_CACHE.parent.mkdir(exist_ok=True)
    MAP_CACHE.write_text(
        json.dumps({"digest": digest, "reached": test_map.reached, "seconds": test_map.seconds})
    )


def map_tests(tree: Path, work: Path, venv_python: str, timeout: float) -> TestMap:
    """One run of the whole suite under coverage, the processes it starts included
    (.mutate-venv's .pth starts coverage in any Python that finds COVERAGE_PROCESS_START);
    each test names itself in the coverage context (tests/conftest.py's coverage_context),
    and a small plugin records what each test took."""
    import coverage

    rcfile = work / "coveragerc"
    data_file = work / "coverage" / "data"
    data_file.parent.mkdir()
    rcfile.write_text(
        "[run]\nparallel = True\n"
        f"data_file = {data_file}\nsource = {tree / 'shim'}\n"
        "context = ${MUTATE_TEST_ID-}\n"
    )
    plugins = work / "plugins"
    plugins.mkdir()
    (plugins / "mutate_durations.py").write_text(DURATIONS_PLUGIN)
    durations = work / "durations.json"
    pytest = ["pytest", "-q", "-p", "no:cacheprovider", "-p", "mutate_durations"]
    run_suite(
        tree,
        venv_python,
        ["coverage", "run", f"--rcfile={rcfile}", "-m", *pytest],
        timeout,
        COVERAGE_PROCESS_START=str(rcfile),
        PYTHONPATH=f"{tree}{os.pathsep}{plugins}",
        MUTATE_DURATIONS=str(durations),
    )
    subprocess.run(
        [venv_python, "-m", "coverage", "combine", f"--rcfile={rcfile}", "--quiet"],
        cwd=tree,
        check=True,
    )
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    reached: dict[str, set[str]] = {}
    for measured in data.measured_files():
        module = str(Path(measured).resolve().relative_to(tree.resolve()))
        for line, contexts in (data.contexts_by_lineno(measured) or {}).items():
            tests = {part for context in contexts for part in context.split("|") if "::" in part}
            reached.setdefault(f"{module}:{line}", set()).update(tests)
    seconds = json.loads(durations.read_text()) if durations.exists() else {}
    return TestMap({line: sorted(tests) for line, tests in reached.items()}, seconds)


def make_tree(into: Path) -> Path:
    """A copy of what the suite reads: the package, the tests, the scripts and tools, and
    the files the layout tests read (the docs' module map, the CHANGELOG...)."""
    into.mkdir(parents=True)
    for name in ("shim", "tests", "scripts", "tools", ".ci", "docs", "build_backend"):
        shutil.copytree(ROOT / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in (
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "eks_token_shim_launcher.py",
    ):
        shutil.copy2(ROOT / name, into / name)
    return into


def equivalents() -> dict[str, str]:
    """The survivors listed as changing no behaviour: ident -> reason."""
    listed = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                ident, _, reason = line.partition("  # ")
                listed[ident.strip()] = reason.strip()
    return listed


def campaign(args: argparse.Namespace) -> dict[str, object]:
    modules = args.modules or sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "shim").glob("*.py")
        if str(path.relative_to(ROOT)) not in NOT_CREDENTIAL_PATH
    )
    every = [mutant for module in modules for mutant in mutants(module)]
    if args.only:
        every = [mutant for mutant in every if args.only in mutant.ident]
    if args.list:
        for mutant in every:
            print(mutant.ident)
        idents = {mutant.ident for mutant in every}
        for ident in equivalents():
            module = ident.partition(" ")[0]
            if (module in modules or not (ROOT / module).exists()) and ident not in idents:
                print(f"listed as equivalent, but no such mutant: {ident}", file=sys.stderr)
        return {}
    work = Path(tempfile.mkdtemp(prefix="eks-token-shim-mutate-"))
    try:
        digest = sources_digest()
        trees = [make_tree(work / f"tree{job}") for job in range(args.jobs)]
        suite = ["pytest", *args.pytest_args]
        test_map = None if args.whole_suite else cached_map(digest)
        if test_map is not None:
            print(f"test map: {MAP_CACHE.relative_to(ROOT)}, made from these sources", flush=True)
        else:
            started = time.monotonic()
            failing: list[str] = []
            if run_suite(trees[0], args.python, suite, args.timeout * 3, failing) != "survived":
                output = trees[0].parent / f"{trees[0].name}.out"
                sys.stderr.write("\n".join(output.read_text(errors="replace").splitlines()[-60:]))
                raise SystemExit(
                    "mutate: the suite fails on the unmutated code: fix that first "
                    f"({', '.join(failing) or 'no test named: a timeout?'})"
                )
            print(f"unmutated suite: passed in {time.monotonic() - started:.0f} s", flush=True)
            if not args.whole_suite:
                test_map = map_tests(trees[0], work, args.python, args.timeout * 3)
                save_map(test_map, digest)
        print(f"{len(every)} mutants", flush=True)
        free = list(trees)
        results: dict[str, str] = {}

        killed_before = _killed_in(Path(args.again)) if args.again else set()
        killers: dict[str, list[tuple[int, str]]] = {}  # module -> (line, test that killed)
        listed = equivalents()  # not run: each would cost every test that reaches it
        budgeted: dict[str, str] = {}  # survivors that did not meet every test reaching them

        def one(mutant: Mutant) -> None:
            if mutant.ident in killed_before:
                results[mutant.ident] = "killed"
                return
            if mutant.ident in listed and not args.check_listed:
                results[mutant.ident] = "listed"
                return
            tests: list[str] = []
            if test_map is not None:
                tests = test_map.tests_for(mutant)
                if not tests:
                    results[mutant.ident] = "uncovered"
                    print(f"{'uncovered':9s} {mutant.ident}", flush=True)
                    return
            tests = _killers_first(tests, killers.get(mutant.module, []), mutant.line)
            reaching = len(tests)
            if args.budget is not None and test_map is not None:
                tests = test_map.within(tests, args.budget)
            tree = free.pop()
            target = tree / mutant.module
            original = target.read_text()
            failed: list[str] = []
            try:
                target.write_text(mutant.source)
                results[mutant.ident] = run_suite(
                    tree, args.python, suite + tests, args.timeout, failed
                )
                killers.setdefault(mutant.module, []).extend((mutant.line, t) for t in failed)
            finally:
                target.write_text(original)
                free.append(tree)
            if len(tests) < reaching and results[mutant.ident] == "survived":
                budgeted[mutant.ident] = f"{len(tests)} of {reaching} tests"
            note = f" (budget: {budgeted[mutant.ident]})" if mutant.ident in budgeted else ""
            print(f"{results[mutant.ident]:9s} {mutant.ident}{note}", flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one, every))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(every, results, listed, budgeted)


def _killers_first(tests: list[str], killers: list[tuple[int, str]], line: int) -> list[str]:
    """`tests` with up to three that killed mutants nearest to `line` first: mutants near
    each other tend to die by the same test."""
    reaching = set(tests)
    first: list[str] = []
    for _, test in sorted(killers, key=lambda killer: abs(killer[0] - line)):
        if test in reaching and test not in first:
            first.append(test)
            if len(first) == 3:
                break
    return first + [test for test in tests if test not in first]


def _killed_in(log: Path) -> set[str]:
    """The mutants an earlier campaign's output (its `killed <ident>` lines) says died."""
    found = set()
    for line in log.read_text().splitlines():
        result, _, ident = line.partition(" ")
        if result in ("killed", "timeout"):
            found.add(ident.strip())
    return found


def report(
    every: list[Mutant],
    results: dict[str, str],
    listed: dict[str, str],
    budgeted: dict[str, str] | None = None,
) -> dict[str, object]:
    per_module: dict[str, dict[str, int]] = {}
    survivors = []
    for mutant in every:
        counts = per_module.setdefault(
            mutant.module, {"mutants": 0, "killed": 0, "equivalent": 0, "survived": 0}
        )
        counts["mutants"] += 1
        result = results.get(mutant.ident, "not run")
        if result in ("killed", "timeout"):
            counts["killed"] += 1
        elif mutant.ident in listed:
            counts["equivalent"] += 1
        elif result in ("survived", "uncovered"):
            counts["survived"] += 1
            note = " (no test reaches it)" if result == "uncovered" else ""
            if budgeted and mutant.ident in budgeted:
                note = f" (within the budget: {budgeted[mutant.ident]})"
            survivors.append(f"{mutant.ident}{note}  (line {mutant.line})")
    print("\n| module | mutants | killed | equivalent | survived | killed of non-equivalent |")
    print("|---|---|---|---|---|---|")
    total = {"mutants": 0, "killed": 0, "equivalent": 0, "survived": 0}
    for module, counts in sorted(per_module.items()):
        for name in total:
            total[name] += counts[name]
        print(_row(module, counts))
    print(_row("all", total))
    if survivors:
        print("\nsurvivors (not in tools/mutate-equivalent.txt):")
        print("\n".join(survivors))
    modules = {mutant.module for mutant in every}
    idents = {mutant.ident for mutant in every}
    wrong = [
        f"{ident}: {'killed' if ident in idents else 'no such mutant (rewritten?)'}"
        for ident in listed
        if ident.partition(" ")[0] in modules
        and (ident not in idents or results.get(ident) in ("killed", "timeout"))
    ]
    if wrong:
        print("\nlisted as equivalent, but:")
        print("\n".join(wrong))
    return {"modules": per_module, "total": total, "survivors": survivors, "results": results}


def _row(name: str, counts: dict[str, int]) -> str:
    real = counts["mutants"] - counts["equivalent"]
    share = f"{100 * counts['killed'] / real:.0f}%" if real else "-"
    cells = [
        name,
        counts["mutants"],
        counts["killed"],
        counts["equivalent"],
        counts["survived"],
        share,
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(prog="tools/mutate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "modules", nargs="*", help="modules to mutate (default: the credential path)"
    )
    parser.add_argument("--only", default="", help="only mutants whose ident contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--jobs", type=int, default=1, help="mutants at once (each in a copy)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds for one suite run")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument(
        "--budget",
        type=float,
        metavar="SEC",
        help="run each mutant against the tests that reach it only up to SEC seconds of their "
        "measured cost (cheapest first): a faster campaign whose kills are lower bounds; "
        "survivors say how many of their tests ran",
    )
    parser.add_argument(
        "--check-listed",
        action="store_true",
        help="run the mutants listed in tools/mutate-equivalent.txt too (default: count "
        "them as equivalent without running them)",
    )
    parser.add_argument(
        "--again",
        metavar="LOG",
        help="an earlier campaign's output: count the mutants it killed as killed and run "
        "only the rest (its survivors, against the tests as they are now)",
    )
    parser.add_argument(
        "--whole-suite",
        action="store_true",
        help="run every test against every mutant (default: only the tests that reach its "
        "lines, from one coverage run of the suite)",
    )
    parser.add_argument("--python", default=sys.executable, help=argparse.SUPPRESS)
    parser.add_argument(
        "--pytest-args",
        nargs=argparse.REMAINDER,
        default=["-x", "-q", "-p", "no:cacheprovider"],
        help="what pytest runs with (default: -x -q -p no:cacheprovider)",
    )
    args = parser.parse_args()
    result = campaign(args)
    if args.json and result:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
