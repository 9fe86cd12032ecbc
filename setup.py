"""The launchers, the one part of the package that differs by platform, chosen when the
wheel is built (pyproject.toml says everything else).

- POSIX: our own `#!python` scripts, scripts/launchers/shim and its twin. pip's
  generated wrapper for a console script imports `re` first, about 14 ms on every cache
  hit; pip points a script's `#!python` line at the installing interpreter, as it does
  for its own wrappers.
- Windows: console-script entry points, for which pip makes `shim.exe` and
  `eks-get-token-use-cache.exe`. CreateProcess, and kubectl (Go's LookPath), run only a
  file whose extension PATHEXT names; a `#!` line means nothing there.

Both run eks_token_shim_launcher.main. A wheel carries the launchers of the platform
it was built on, so a release publishes one for each (see the release workflow).
"""

import os
import sys

from setuptools import setup

# Their names are the files of scripts/launchers (shim.LAUNCHERS names them too: a test
# holds the two together).
LAUNCHERS = sorted(
    os.listdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "launchers"))
)

if sys.platform == "win32":
    setup(
        entry_points={
            "console_scripts": [f"{name} = eks_token_shim_launcher:main" for name in LAUNCHERS]
        }
    )
else:
    setup(scripts=[f"scripts/launchers/{name}" for name in LAUNCHERS])
