"""The installed launchers (scripts/launchers): the user's Python environment does not
reach the shim's interpreter, and the backend still gets it as it came."""

from __future__ import annotations

from pathlib import Path

from helpers import Shim, plant_shim_package, token_of

from shim import __version__


def test_pythonpath_to_a_project_with_a_shim_package_does_not_run_it(
    shim: Shim, tmp_path: Path
) -> None:
    project, marker = tmp_path / "project", tmp_path / "imported"
    plant_shim_package(project, marker)
    result = shim.run("-c", "demo", cwd=project, PYTHONPATH=".")
    assert token_of(result.stdout)
    assert not marker.exists()
    assert shim.calls()[0]["pythonpath"] == "."  # the backend's environment is untouched


def test_pythoninspect_does_not_leave_kubectl_at_a_prompt(shim: Shim) -> None:
    """Without -E the interpreter would print SystemExit's traceback and read a `>>>`
    prompt from stdin after main returned."""
    version = shim.run("--version", stdin=b"print('read by a prompt')\n", PYTHONINSPECT="1")
    assert version.stdout == f"eks-token-shim {__version__}\n".encode()
    assert version.stderr == b""


def test_harmless_python_variables_keep_the_hit_to_one_interpreter(shim: Shim) -> None:
    """PYTHONPROFILEIMPORTTIME is harmless, so it is not ignored: one interpreter's imports
    (a second start would show `site` twice and nothing of the first's)."""
    shim.run("-c", "demo")
    # (PYTHONPATH empty is unset, as Python reads it: whoever runs the suite may set it)
    hit = shim.run("-c", "demo", PYTHONPROFILEIMPORTTIME="1", PYTHONUNBUFFERED="1", PYTHONPATH="")
    assert hit.stderr.count(b"| site\n") == 1
    assert b"| shim.main\n" in hit.stderr


def test_import_profiling_survives_the_restart(shim: Shim) -> None:
    """Started again under -E for PYTHONPATH, the shim's interpreter still profiles its
    imports when asked to: the one way to see what a slow call spends its start on."""
    shim.run("-c", "demo")
    hit = shim.run("-c", "demo", PYTHONPROFILEIMPORTTIME="1", PYTHONPATH="/nonexistent")
    assert hit.stderr.count(b"| site\n") == 2  # two interpreters: the restart happened
    assert b"| shim.main\n" in hit.stderr
