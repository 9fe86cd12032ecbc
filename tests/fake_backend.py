"""A fake `aws` / `aws-iam-authenticator` for the tests: logs each call, misbehaves on demand.

The mode comes from $FAKE_MODE (not an identity variable, so it does not change the
cache key); every call appends one JSON line to $FAKE_LOG.
"""

import contextlib
import datetime
import json
import os
import subprocess
import sys
import time

mode = os.environ.get("FAKE_MODE", "ok")
log = os.environ["FAKE_LOG"]
with open(log, "a") as file:
    file.write(
        json.dumps(
            {
                "argv": sys.argv,
                "pid": os.getpid(),
                "profile": os.environ.get("AWS_PROFILE"),
                "exec_info": os.environ.get("KUBERNETES_EXEC_INFO"),
                "pythonpath": os.environ.get("PYTHONPATH"),
            }
        )
        + "\n"
    )
with open(log) as file:
    count = sum(1 for _ in file)

if os.environ.get("FAKE_GATE"):  # wait until the test opens the gate: creates this file
    gate_deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["FAKE_GATE"]) and time.monotonic() < gate_deadline:
        time.sleep(0.02)
if os.environ.get("FAKE_TOUCH"):  # a file changed while the backend runs (appended to)
    with open(os.environ["FAKE_TOUCH"], "a") as touched:
        touched.write("changed while the backend ran\n")
if mode.startswith("sleep"):  # sleep:SECONDS, then answer as "ok"
    time.sleep(float(mode.partition(":")[2]))
if mode.startswith("child-sleep"):  # child-sleep:SECONDS: a child `sleep` too, its pid noted
    seconds = mode.partition(":")[2]
    child = subprocess.Popen(["sleep", seconds])
    with open(os.environ["FAKE_CHILD_PIDS"], "a") as pids:
        pids.write(f"{child.pid}\n")
    time.sleep(float(seconds))
if mode.startswith("stubborn"):  # stubborn[-child]:SECONDS: its child, and it, ignore TERM
    import signal

    seconds = mode.partition(":")[2]
    child = subprocess.Popen(["sh", "-c", f"trap '' TERM; exec sleep {seconds}"])
    with open(os.environ["FAKE_CHILD_PIDS"], "a") as pids:
        pids.write(f"{child.pid}\n")
    if not mode.startswith("stubborn-child"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(float(seconds))
if mode.startswith("trap-sleep:"):  # trap-sleep:SECONDS: on TERM, tidy up for 0.2 s, say so
    import signal

    def tidy_up(signum: int, frame: object) -> None:
        time.sleep(0.2)
        with open(os.environ["FAKE_TERM_LOG"], "a") as said:
            said.write("tidied up after TERM\n")
        sys.exit(143)

    signal.signal(signal.SIGTERM, tidy_up)
    time.sleep(float(mode.partition(":")[2]))
if mode.startswith("exit:"):  # exit:N, having printed nothing
    sys.exit(int(mode.partition(":")[2]))
if mode.startswith("die:"):  # die:N: killed by signal N, as a crashing backend is
    os.kill(os.getpid(), int(mode.partition(":")[2]))
if mode == "stderr-child":  # leaves a child behind that holds our stderr, not our stdout
    child = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL)
    with open(os.environ["FAKE_CHILD_PIDS"], "a") as pids:
        pids.write(f"{child.pid}\n")
if mode == "fail":
    sys.stderr.write("An error occurred (ExpiredToken): the security token is expired\n")
    sys.exit(3)
if mode == "sso-expired":  # as AWS CLI v2 words it
    sys.stderr.write("Error when retrieving token from sso: Token has expired and refresh failed\n")
    sys.exit(255)
if mode == "garbage":
    print("<html>Gateway Timeout</html>")
    sys.exit(0)
if mode == "empty":
    sys.exit(0)

now = datetime.datetime.now(datetime.timezone.utc)
lifetime = float(os.environ.get("FAKE_LIFETIME", "840"))
expiry = now + datetime.timedelta(seconds=lifetime)
if mode == "offset":  # the same instant, written in +09:00 with a fraction
    stamp = expiry.astimezone(datetime.timezone(datetime.timedelta(hours=9))).isoformat()
else:
    stamp = os.environ.get("FAKE_EXPIRY") or expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
api_version = "client.authentication.k8s.io/v1beta1"
with contextlib.suppress(KeyError, ValueError, RecursionError, AttributeError):
    api_version = json.loads(os.environ["KUBERNETES_EXEC_INFO"]).get("apiVersion", api_version)
token = f"k8s-aws-v1.fake-{count}-{os.getpid()}"
if os.environ.get("FAKE_PAD"):  # a token of a known length: "k8s-aws-v1." and N x's
    token = "k8s-aws-v1." + "x" * int(os.environ["FAKE_PAD"])
if mode == "mfa":  # reads a code from stdin, as an MFA prompt would
    sys.stderr.write("Enter MFA code: ")
    sys.stderr.flush()  # as a real prompt does: no newline, so line buffering keeps it
    token += "-mfa-" + sys.stdin.readline().strip()
status = {"expirationTimestamp": stamp, "token": token}
if mode == "notoken":
    del status["token"]
if mode == "cert":  # a client certificate instead of a token, made for this call
    import trustme

    leaf = trustme.CA().issue_cert("fake-client")
    del status["token"]
    status["clientCertificateData"] = leaf.cert_chain_pems[0].bytes().decode()
    status["clientKeyData"] = leaf.private_key_pem.bytes().decode()
if mode == "noexpiry":
    del status["expirationTimestamp"]
if mode == "huge":  # a valid credential larger than any cache entry may be
    status["token"] += "x" * (1 << 20)
if mode == "stderr":
    sys.stderr.write("a message from the backend\n")
print(
    json.dumps(
        {"kind": "ExecCredential", "apiVersion": api_version, "spec": {}, "status": status},
        indent=4,
    )
)
if mode.startswith("close-output:"):  # close-output:SECONDS: the credential, then run on
    sys.stdout.flush()
    os.close(1)
    os.close(2)
    time.sleep(float(mode.partition(":")[2]))
