# Sourced by the scripts (scripts/*, tools/mutate): virtual environments that install
# what they need, so that a fresh machine needs nothing installed by hand, and the one
# way they call pip.

# The Python versions the package supports at either end (pyproject.toml's classifiers;
# tests/test_layout.py holds the two to them). scripts/test runs the suite under both.
OLDEST_PYTHON=3.9
NEWEST_PYTHON=3.13

# quiet_pip PYTHON ARGS...: pip of that interpreter, quiet. The image's pip config names a
# local index that may be absent: that warning alone is dropped.
quiet_pip() {
    local python=$1
    shift
    "$python" -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored" >&2)
}

# ensure_venv [EXTRA] [VENV] [PYTHON]: make VENV (default .venv) with PYTHON (default
# $PYTHON, else python3) and install the project into it, with EXTRA ("test": the test
# and benchmark tools). A real (not editable) install, so that the scripts run as users
# get them (an editable install's import hook alone costs more than a cache hit);
# forced, so that an unchanged version number still picks up the working tree.
ensure_venv() {
    local spec="." venv="${2:-.venv}" python="${3:-${PYTHON:-python3}}"
    [ -n "${1:-}" ] && spec=".[$1]"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    quiet_pip "$venv/bin/python" install "$spec"
    quiet_pip "$venv/bin/python" install --force-reinstall --no-deps .
}

# find_python VERSION: the path of a Python VERSION (e.g. 3.9): pyenv's newest build of
# it, else pythonVERSION on PATH; nothing (and status 1) when there is none.
find_python() {
    local version=$1 root found
    root=${PYENV_ROOT:-$(pyenv root 2> /dev/null || echo "$HOME/.pyenv")}
    found=$(ls -d "$root"/versions/"$version".*/bin/python 2> /dev/null | sort -V | tail -n 1)
    [ -n "$found" ] || found=$(command -v "python$version" || true)
    [ -n "$found" ] && echo "$found"
}
