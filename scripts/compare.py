"""A/B two installed shims on this machine: alternating rounds of a hit and a miss.

    python scripts/compare.py OLD/bin/shim NEW/bin/shim [ROUNDS]

Generic mode with `cat` of a fresh token as the backend, so that only the shims'
own cost differs (no AWS CLI noise). Each shim gets its own temporary HOME. Medians
and minima in milliseconds; no goal, no exit code: a measurement for a note.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> int:
    old, new = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    work = tempfile.mkdtemp(prefix="eks-token-shim-compare-")
    token = os.path.join(work, "token.json")
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 840))
    status = {"token": "t", "expirationTimestamp": expiry}
    with open(token, "w") as file:
        json.dump(
            {
                "kind": "ExecCredential",
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "status": status,
            },
            file,
        )
    shims = {"old": old, "new": new}
    homes = {name: tempfile.mkdtemp(dir=work) for name in shims}

    def timed(name: str, *args: str) -> float:
        env = dict(os.environ, HOME=homes[name], LANG="C.UTF-8")
        start = time.perf_counter()
        command = [shims[name], *args, "--", "cat", token]
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start

    samples: dict[str, list[float]] = {}
    for name in shims:
        timed(name)  # cache the entry, warm the page cache
    for _ in range(rounds):
        for name in shims:
            samples.setdefault(f"{name} hit", []).append(timed(name))
            samples.setdefault(f"{name} miss", []).append(timed(name, "--refresh"))
    for label, values in samples.items():
        median, low = statistics.median(values) * 1000, min(values) * 1000
        print(f"{label:9s} median {median:6.1f} ms  min {low:6.1f} ms  ({rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
