"""What the installed `shim` and `eks-get-token-use-cache` launchers run: keep the user's
Python environment out of the shim's interpreter, then the shim.

kubectl runs the shim wherever the user is, with the user's environment. With
PYTHONPATH=. in a project that has its own `shim` package, `import shim` would run that
package on every kubectl call; PYTHONINSPECT would leave kubectl at a `>>>` prompt.
Where any PYTHON* variable is set (not empty) but the harmless ones below (they change neither what
runs nor what reaches stdout), Python starts again under -E (the variables ignored)
and -s (no user site-packages, unless the shim is installed there), with -X importtime
if PYTHONPROFILEIMPORTTIME asked for it. Only the interpreter: the backend gets the
environment as it came. pip drops any flag from a script's `#!` line, and Windows has
no exec: there, the environment is left alone.

A module of its own, with a name no project shadows by accident, rather than code in the
launchers: a script is compiled on every run (this costs a hit 2% of its
instructions there), a module is read from its cached bytecode.
"""

from __future__ import annotations

import os
import sys

HARMLESS = frozenset(
    {
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPYCACHEPREFIX",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONCOERCECLOCALE",
        "PYTHONHASHSEED",
        "PYTHONSTARTUP",
        "PYTHONBREAKPOINT",
        "PYTHONSAFEPATH",
        "PYTHONNODEBUGRANGES",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHON_HISTORY",
        "PYTHON_BASIC_REPL",
        "PYTHON_COLORS",
    }
)


def main() -> int:
    """Run the shim, after starting Python again if the environment would reach it."""
    if (
        os.name == "posix"
        and not sys.flags.ignore_environment
        # (empty counts as unset, as Python reads them)
        and any(
            name[:6] == "PYTHON" and value and name not in HARMLESS
            for name, value in os.environ.items()
        )
    ):
        import site

        user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else ""
        installed_there = user_site and os.path.isdir(os.path.join(user_site, "shim"))
        flags = ["-E" if installed_there else "-Es"]
        if os.environ.get("PYTHONPROFILEIMPORTTIME"):
            flags.append("-Ximporttime")  # what -E would drop, and is asked for to look inside
        os.execv(sys.executable, [sys.executable, *flags, *sys.argv])  # noqa: S606 - no shell
    from shim.main import main as shim

    return shim()
