"""The build backend: setuptools', after the one check it cannot make itself.

On a Python older than the package supports, pip would first try to install the
setuptools this project needs (77, which supports only 3.9 and newer) and fail with a
resolver error that does not say why. pyproject.toml asks for setuptools only on 3.9
and newer, and this module answers the others in one line.
"""

import sys

MINIMUM = (3, 9)

if sys.version_info < MINIMUM:
    raise SystemExit(  # (no f-string: this must parse on Pythons older than 3.6 too)
        "eks-token-shim requires Python >= %d.%d; this is Python %d.%d (%s)"  # noqa: UP031
        % (MINIMUM + sys.version_info[:2] + (sys.executable,))
    )

from setuptools.build_meta import *  # noqa: E402, F403 - every hook, as setuptools has it
