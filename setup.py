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
it was built on, so a release publishes one for each: the POSIX one as
`py3-none-any`, the Windows one tagged with its platform (below; see
.github/workflows/release.yml).
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
    import sysconfig

    from setuptools.command.bdist_wheel import bdist_wheel

    class WindowsWheel(bdist_wheel):  # type: ignore[misc]
        """A wheel tagged for the Windows it was built on (`py3-none-win_amd64`), not
        `any`: its launchers are made for Windows only, the POSIX wheel's for POSIX only.
        So the two can be published side by side, and pip on each picks its own (a
        platform tag wins over `any`)."""

        def get_tag(self) -> tuple[str, str, str]:
            python, abi, _ = super().get_tag()
            platform = self.plat_name or sysconfig.get_platform()
            return python, abi, platform.replace("-", "_").replace(".", "_")

    setup(
        cmdclass={"bdist_wheel": WindowsWheel},
        entry_points={
            "console_scripts": [f"{name} = eks_token_shim_launcher:main" for name in LAUNCHERS]
        },
    )
else:
    setup(scripts=[f"scripts/launchers/{name}" for name in LAUNCHERS])
