"""eks-token-shim: a cached, validated exec-credential shim for kubectl.

Nothing is imported here on purpose: `shim.main` runs on every kubectl call and
pays for every module this package pulls in.
"""

__version__ = "0.2.0"
# The names the package installs its launcher under (scripts/launchers/): both run
# shim.main, and a kubeconfig exec command with either base name is the shim itself.
LAUNCHERS = ("shim", "eks-get-token-use-cache")
