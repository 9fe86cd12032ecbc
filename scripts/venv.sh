# Sourced by scripts/test, scripts/demo and scripts/bench: make .venv and install
# the project into it, so that a fresh machine needs nothing installed by hand.
# Usage: ensure_venv [EXTRA]   (EXTRA: "test" for the test and benchmark tools)
ensure_venv() {
    local spec="."
    [ -n "${1:-}" ] && spec=".[$1]"
    [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
    _pip install "$spec"
    # A real (not editable) install, so that the scripts run as users get them (an
    # editable install's import hook alone costs more than a cache hit); forced, so
    # that an unchanged version number still picks up the working tree.
    _pip install --force-reinstall --no-deps .
}

_pip() {
    # The image's pip config names a local index that may be absent: drop that warning only.
    .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored" >&2)
}
