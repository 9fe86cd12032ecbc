"""End to end: `--list` and `--purge`, for every kind of entry, touching only the shim's files."""

from __future__ import annotations

import calendar
import json
import os
import time
from pathlib import Path

import pytest
from helpers import (
    HANG_GUARD,
    KUBECONFIG_ENV,
    V1,
    WRAPPED,
    Shim,
    age,
    key_of,
    locked,
    sidecar,
    token_of,
)

from shim.entry import Entry, decode_entry, encode_entry

# Only our own files.
KEY = "0123456789abcdef" * 4  # the form of a key: 64 lower-case hex digits

FOREIGN = {
    "Cargo.lock": b"# cargo\n",
    "yarn.lock": b"# yarn\n",
    "notes.tmp": b"my notes\n",
    "README.entry": b"not an entry\n",
    ".hidden.entry.1.abcdef12.tmp": b"not ours either\n",
    "background.log.old": b"kept\n",
    "a" * 64 + ".entry.bak": b"a backup of someone's\n",
    "A" * 64 + ".entry": b"upper case: not a digest of ours\n",
    "deadbeef.entry": b"hex, but too short for a digest of ours\n",
    "b" * 65 + ".lock": b"hex, but too long\n",
    "c" * 64 + ".txt": b"a digest, but no suffix of ours\n",
    # Near misses of our temp files (.NAME.PID.RANDOM.tmp, shim.files.temp_name):
    f".{KEY}.entry.x1.abcdef12.tmp": b"pid not a number\n",
    f".{KEY}.entry.1.abcdef1.tmp": b"random part too short\n",
    f".{KEY}.entry.1.abcdefgh.tmp": b"random part not hex\n",
    f".{KEY}.entry.1.abcdef12.temp": b"not .tmp\n",
    f".{KEY}.entry.1.2.abcdef12.tmp": b"one part too many\n",
    f".{KEY}.entry.1.abcdef12.tmp.bak": b"a copy of a temp file\n",
    f"x.{KEY}.entry.1.abcdef12.tmp": b"not hidden\n",
    f".{KEY}.txt.1.abcdef12.tmp": b"not a file of a key\n",
    f".{KEY[1:]}.entry.1.abcdef12.tmp": b"not a key\n",
}

OURS = [f".{KEY}.entry.123.abcdef12.tmp", f".{KEY}.served.7.00ff00ff.tmp"]  # a writer killed

MADE = {
    # how users make entries for cluster "prod", and what --list then says of them
    "eks mode": (["-c", "prod"], {}),
    "eks mode, -r and -p": (["-c", "prod", "-r", "eu-west-1", "-p", "admin"], {}),
    "shim kubeconfig wrap": (WRAPPED, KUBECONFIG_ENV),
    "wrapped authenticator": (["--", "aws-iam-authenticator", "token", "-i", "prod"], {}),
}


def make_all(shim: Shim) -> None:
    for args, env in MADE.values():
        shim.run(*args, env=env)
    shim.run("-c", "other")
    assert len(shim.entries()) == 5


def test_purge_removes_the_selected_entry_or_all(shim: Shim) -> None:
    shim.run("-c", "a")
    shim.run("-c", "a", KUBERNETES_EXEC_INFO=V1)
    shim.run("-c", "b")
    assert len(shim.entries()) == 3
    result = shim.run("--purge", "-c", "a")
    assert result.returncode == 0
    assert b"removed 2" in result.stdout
    assert len(shim.entries()) == 1
    assert shim.run("--purge").returncode == 0
    assert shim.entries() == []
    assert shim.run("--purge").returncode == 0  # nothing there is fine too


def test_list_shows_entries_but_never_a_token(shim: Shim) -> None:
    tokens = [
        token_of(shim.run("-c", "prod", "-p", "admin", "-r", "eu-west-1").stdout),
        token_of(shim.run("--", "aws", "eks", "get-token", "--cluster-name", "dev").stdout),
    ]
    result = shim.run("--list")
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    header = ["CLUSTER/COMMAND", "PROFILE", "REGION", "API", "MADE", "EXPIRES", "LEFT"]
    assert lines[0].split() == header
    assert sorted(line.split()[:5] for line in lines[1:]) == [
        ["dev", "-", "-", "v1beta1", "generic"],
        ["prod", "admin", "eu-west-1", "v1beta1", "eks"],
    ]
    assert all(token not in result.stdout.decode() for token in tokens)
    assert b"k8s-aws-v1" not in result.stdout


def test_counts_are_said_in_words_that_agree_with_them(shim: Shim) -> None:
    shim.run("-c", "prod")
    assert b"debug: 1 cache entry in " in shim.run("--list", "-v").stderr
    shim.run("-c", "dev")
    assert b"debug: 2 cache entries in " in shim.run("--list", "-v").stderr
    assert b"removed 2 cache entries from " in shim.run("--purge").stdout
    shim.run("-c", "prod")
    assert b"removed 1 cache entry from " in shim.run("--purge").stdout


def test_list_shows_every_kind_of_entry_in_columns_under_the_header(shim: Shim) -> None:
    """A command the backend table does not know is listed by its words, an entry whose
    metadata cannot be read as `?` and dashes, a damaged entry by its key; LEFT counts
    down to EXPIRES; every cell starts under its header. Purge says the same words."""
    shim.run("-c", "prod")
    (shim.bin / "my-plugin").write_bytes((shim.bin / "aws").read_bytes())
    (shim.bin / "my-plugin").chmod(0o755)
    shim.run("--", "my-plugin", "--flag")  # no backend the shim knows: no cluster to read
    before = set(shim.entries())
    shim.run("-c", "odd")
    (odd,) = set(shim.entries()) - before
    entry = decode_entry(odd.read_bytes())
    assert entry is not None
    odd.write_bytes(encode_entry(Entry(entry.expiry, entry.fetched_at, b"{[", entry.credential)))
    (shim.cache_dir / ("ab" * 32 + ".entry")).write_bytes(b"garbage")
    now = time.time()
    lines = shim.run("--list").stdout.decode().splitlines()
    header = ["CLUSTER/COMMAND", "PROFILE", "REGION", "API", "MADE", "EXPIRES", "LEFT"]
    starts = [lines[0].index(name) for name in header]
    rows = [
        [line[start:end].strip() for start, end in zip(starts, [*starts[1:], None])]
        for line in lines
    ]
    assert rows[0] == header
    damaged, unreadable, generic, prod = sorted(rows[1:])
    assert damaged == ["(damaged entry abababababab...)", "-", "-", "-", "-", "-", "-"]
    assert generic[:5] == ["my-plugin --flag", "-", "-", "v1beta1", "generic"]
    assert prod[:5] == ["prod", "-", "-", "v1beta1", "eks"]
    assert unreadable[:5] == ["?", "-", "-", "-", "-"]
    for row in (generic, prod, unreadable):
        expires = calendar.timegm(time.strptime(row[5], "%Y-%m-%dT%H:%M:%SZ"))
        assert 0 < expires - now <= 841
        assert abs(int(row[6].removesuffix("s")) - (expires - now)) <= 2
    purged = shim.run("--purge", "--", "my-plugin", "--flag").stdout.decode()
    assert purged.splitlines() == [
        "removed: command my-plugin --flag, profile -, region -, api v1beta1, made generic",
        f"removed 1 cache entry from {shim.cache_dir}",
    ]
    result = shim.run("--purge")
    assert result.stdout.decode().splitlines() == [f"removed 3 cache entries from {shim.cache_dir}"]
    assert result.stderr == b""


def test_purge_and_list_touch_only_files_the_shim_could_have_written(shim: Shim) -> None:
    shim.run("-c", "demo")
    for name, data in [*FOREIGN.items(), *((name, b"half an entry") for name in OURS)]:
        (shim.cache_dir / name).write_bytes(data)
        (shim.cache_dir / name).chmod(0o600)
    listed = shim.run("--list").stdout.decode()
    assert "damaged" not in listed
    assert len(listed.splitlines()) == 2  # the header and our one entry
    result = shim.run("--purge")
    assert b"removed 1 cache entry" in result.stdout
    assert f"left alone {len(FOREIGN)} files".encode() in result.stderr
    assert sorted(os.listdir(shim.cache_dir)) == sorted([*FOREIGN, "purged"])  # its marker
    for name, data in FOREIGN.items():
        assert (shim.cache_dir / name).read_bytes() == data


def test_a_directory_named_like_an_entry_does_not_stop_purge(shim: Shim) -> None:
    shim.run("-c", "one")
    shim.run("-c", "two")
    first, second = shim.entries()
    first.unlink()
    first.mkdir()  # a directory where an entry would be
    result = shim.run("--purge")
    assert b"removed 1 cache entry" in result.stdout
    assert b"left alone 1 file " in result.stderr
    assert first.is_dir()
    assert not second.exists()
    assert shim.run("--list").returncode == 0
    second.mkdir()
    assert b"left alone 2 files " in shim.run("--purge").stderr
    third = shim.cache_dir / (KEY + ".entry")
    third.symlink_to(first)  # a symlink named like an entry, to a directory: the link goes
    assert b"removed 1 cache entry" in shim.run("--purge").stdout
    assert not third.is_symlink()
    assert first.is_dir()


def test_list_and_purge_before_anything_was_cached_create_nothing(
    shim: Shim, private_home: Path
) -> None:
    listed = shim.run("--list").stdout.decode().splitlines()
    assert listed == [listed[0]]
    assert listed[0].startswith("CLUSTER/COMMAND")
    assert b"removed 0 cache entries" in shim.run("--purge").stdout
    assert b"removed 0 cache entries" in shim.run("--purge", "-c", "demo").stdout
    assert not (private_home / ".kube").exists()


def test_purging_a_cluster_removes_its_sidecars_and_its_lock(shim: Shim) -> None:
    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "x"})
    shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)  # kubectl asked: a .served note
    sidecar(shim, ".ahead").write_bytes(b"")  # as a refresh ahead leaves it
    sidecar(shim, ".ahead").chmod(0o600)
    assert {path.suffix for path in shim.cache_dir.iterdir()} >= {".entry", ".served", ".ahead"}
    assert b"removed: cluster demo" in shim.run("--purge", "-c", "demo").stdout
    names = {path.name for path in shim.cache_dir.iterdir()} - {"background.log"}
    assert names == {"purged"}


def test_purging_a_cluster_leaves_a_lock_that_a_running_call_holds(shim: Shim) -> None:
    shim.run("-c", "demo")
    lock_path = shim.cache_dir / (key_of(shim) + ".lock")
    with locked(str(lock_path), 0) as held:  # a fetch running meanwhile
        assert held
        assert b"removed: cluster demo" in shim.run("--purge", "-c", "demo").stdout
        assert lock_path.exists()  # its holder removes it when it lets it go
    assert shim.entries() == []


def test_list_shows_cluster_profile_region_and_how_each_entry_was_made(shim: Shim) -> None:
    make_all(shim)
    rows = sorted(line.split()[:5] for line in shim.run("--list").stdout.decode().splitlines()[1:])
    assert rows == [
        ["other", "-", "-", "v1beta1", "eks"],
        ["prod", "-", "-", "v1beta1", "eks"],
        ["prod", "-", "-", "v1beta1", "generic"],
        ["prod", "admin", "eu-west-1", "v1beta1", "eks"],
        ["prod", "ops", "eu-west-1", "v1beta1", "generic"],
    ]


def test_a_wrapped_command_s_flags_are_read_as_its_program_reads_them(shim: Shim) -> None:
    """`--flag=value` as well as `--flag value`, the last one winning, a flag without a value
    at the end read as nothing."""
    shim.run(
        "--",
        "aws",
        "eks",
        "get-token",
        "--cluster-name=old",
        "--cluster-name=prod",
        "--region=eu-west-1",
        "--profile",
    )
    rows = [line.split()[:5] for line in shim.run("--list").stdout.decode().splitlines()[1:]]
    assert rows == [["prod", "-", "eu-west-1", "v1beta1", "generic"]]
    assert b"removed 0" in shim.run("--purge", "-c", "old").stdout
    assert b"removed 1" in shim.run("--purge", "-c", "prod", "-r", "eu-west-1").stdout


def test_list_reads_region_and_profile_from_the_environment_as_the_aws_cli_does(
    shim: Shim,
) -> None:
    """AWS_REGION before AWS_DEFAULT_REGION, AWS_PROFILE before AWS_DEFAULT_PROFILE."""
    legacy = {"AWS_DEFAULT_REGION": "ap-south-1", "AWS_DEFAULT_PROFILE": "legacy"}
    shim.run("-c", "one", env=legacy)
    shim.run("-c", "two", env={**legacy, "AWS_REGION": "eu-west-1", "AWS_PROFILE": "ops"})
    rows = sorted(line.split()[:3] for line in shim.run("--list").stdout.decode().splitlines()[1:])
    assert rows == [["one", "legacy", "ap-south-1"], ["two", "ops", "eu-west-1"]]
    assert b"removed 1" in shim.run("--purge", "-c", "one", "-r", "ap-south-1").stdout


def test_purge_a_cluster_removes_it_however_it_was_made(shim: Shim) -> None:
    make_all(shim)
    result = shim.run("--purge", "-c", "prod")
    lines = result.stdout.decode().splitlines()
    assert len([line for line in lines if line.startswith("removed: cluster prod,")]) == 4
    assert lines[-1].startswith("removed 4 cache entries")
    assert "other" in shim.run("--list").stdout.decode()
    assert len(shim.entries()) == 1


@pytest.mark.parametrize(
    ("narrowing", "left"),
    [(["-p", "admin"], 4), (["-r", "eu-west-1"], 3), (["-p", "ops", "-r", "us-east-1"], 5)],
)
def test_purge_is_narrowed_by_profile_and_region(
    shim: Shim, narrowing: list[str], left: int
) -> None:
    make_all(shim)
    shim.run("--purge", "-c", "prod", *narrowing)
    assert len(shim.entries()) == left


def test_purge_a_command_keeps_its_exact_meaning(shim: Shim) -> None:
    make_all(shim)
    args, env = MADE["wrapped authenticator"]
    result = shim.run("--purge", *args, env=env)
    assert b"removed 1 cache entry" in result.stdout
    assert len(shim.entries()) == 4


def test_list_shows_when_max_age_ends_an_entry_not_only_the_backends_expiry(shim: Shim) -> None:
    shim.run("-c", "demo", FAKE_LIFETIME="86400")  # a day, by the backend's word
    now = time.time()

    def row(*args: str, env: dict[str, str] | None = None) -> list[str]:
        (line,) = shim.run("--list", *args, env=env).stdout.decode().splitlines()[1:]
        return line.split()

    expires, left = row()[-2:]
    assert abs(calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) - (now + 3600)) <= 2
    assert abs(int(left.rstrip("s")) - 3600) <= 2  # --max-age's default ends it after an hour
    assert abs(int(row("--max-age", "600")[-1].rstrip("s")) - 600) <= 2
    assert abs(int(row(env={"EKS_SHIM_MAX_AGE": "172800"})[-1].rstrip("s")) - 86400) <= 2


def test_list_shows_only_the_entries_that_c_p_r_select(shim: Shim) -> None:
    shim.run("-c", "prod", "-r", "eu-west-1")
    shim.run("-c", "prod", "-r", "us-east-1", "-p", "admin")
    shim.run("-c", "dev")

    def clusters_and_regions(*args: str) -> list[list[str]]:
        lines = shim.run("--list", *args).stdout.decode().splitlines()
        assert lines[0].startswith("CLUSTER/COMMAND")
        return sorted([line.split()[0], line.split()[2]] for line in lines[1:])

    assert clusters_and_regions("-c", "prod") == [["prod", "eu-west-1"], ["prod", "us-east-1"]]
    assert clusters_and_regions("-c", "prod", "-r", "us-east-1") == [["prod", "us-east-1"]]
    assert clusters_and_regions("-p", "admin") == [["prod", "us-east-1"]]
    assert clusters_and_regions("-c", "nowhere") == []
    assert len(clusters_and_regions()) == 3


def test_list_shows_control_characters_escaped_never_raw(shim: Shim) -> None:
    """A cached argv that would retitle the terminal and clear the screen."""
    (shim.bin / "plugin").write_bytes((shim.bin / "aws").read_bytes())
    (shim.bin / "plugin").chmod(0o755)
    hostile = "\x1b]0;title\x07\x1b[2J\x9b31m"
    shim.run("--", "plugin", hostile)
    listed = shim.run("--list").stdout
    assert not any(byte < 0x20 and byte != 0x0A for byte in listed)  # only newlines
    assert "\x9b" not in listed.decode()
    assert rb"plugin \x1b]0;title\x07\x1b[2J\x9b31m" in listed
    purged = shim.run("--purge", "--", "plugin", hostile).stdout
    assert rb"\x1b]0;title" in purged
    assert b"\x1b" not in purged


def _wait_for_backend_runs(shim: Shim, count: int) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while len(shim.calls()) < count:
        assert time.monotonic() < deadline, "the backend never ran"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "purge", [["--purge"], ["--purge", "-c", "demo"], ["--purge", "-c", "other"]]
)
def test_a_purge_wins_over_a_fetch_that_began_before_it(shim: Shim, purge: list[str]) -> None:
    gate = shim.cache_dir.parent / "gate"
    fetching = shim.popen("-c", "demo", FAKE_GATE=str(gate))
    _wait_for_backend_runs(shim, 1)
    shim.run(*purge)
    gate.touch()
    out, err = fetching.communicate(timeout=HANG_GUARD)
    assert fetching.returncode == 0, err.decode()
    assert b'"token"' in out  # its kubectl gets the credential all the same
    assert shim.entries() == []  # (a purge of another cluster too: one more miss, no harm)
    shim.run("-c", "demo")
    shim.run("-c", "demo")
    assert len(shim.calls()) == 2  # fetched again, and cached: a purge before a fetch is past


def test_a_purge_wins_over_a_background_refresh_that_began_before_it(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 600)  # in the refresh-ahead window
    gate = shim.cache_dir.parent / "gate"
    shim.run("-c", "demo", FAKE_GATE=str(gate))  # served, and a refresh started behind
    _wait_for_backend_runs(shim, 2)
    shim.run("--purge", "-c", "demo")
    gate.touch()
    deadline = time.monotonic() + HANG_GUARD
    while any(shim.cache_dir.glob("*.sock")):  # removed once its fetch and write are over
        assert time.monotonic() < deadline, "the background refresh never ended"
        time.sleep(0.02)
    assert shim.entries() == []
    assert shim.run("--list").stdout.decode().splitlines()[1:] == []
