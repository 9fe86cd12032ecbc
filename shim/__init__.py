"""eks-token-shim: a cached, validated exec-credential shim for kubectl.

Nothing is imported here on purpose: `shim.fast` runs on every kubectl call
and pays for every module this package pulls in (see issue #3).
"""

__version__ = "0.2.0"
