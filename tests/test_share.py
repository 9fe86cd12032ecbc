"""shim.share: a lock holder's outcome, sent to the calls that waited for it, and only those."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest
from helpers import open_descriptors, queued_on
from hypothesis import given
from hypothesis import strategies as st

from shim.deadline import Deadline
from shim.errors import BackendError
from shim.share import _MAX_OUTCOME, Holder, Waiter, decode, encode

KEY = "ab" * 32
IDENTITY = b"0f" * 32


@given(st.binary(min_size=1, max_size=300))
def test_a_credential_comes_back_as_it_was_sent(credential: bytes) -> None:
    assert decode(KEY, IDENTITY, encode(KEY, IDENTITY, credential)) == credential


# Text as the OS gives it: any character but a surrogate, and bytes that were not UTF-8
# as surrogate escapes.
lines = st.text(
    st.characters(blacklist_characters="\n", codec="utf-8") | st.sampled_from("\udc80\udcff"),
    max_size=60,
)


@given(
    lines,
    lines,
    st.integers(0, 255),
    st.binary(max_size=300),
)
def test_a_failure_comes_back_with_its_message_hint_code_and_stderr(
    message: str, hint: str, code: int, stderr: bytes
) -> None:
    error = BackendError(message, code, hint)
    error.stderr = stderr
    back = decode(KEY, IDENTITY, encode(KEY, IDENTITY, error))
    assert isinstance(back, BackendError)
    assert (back.message, back.hint, back.exit_code, back.stderr) == (message, hint, code, stderr)


def test_what_is_not_a_whole_outcome_for_this_key_is_none() -> None:
    whole = encode(KEY, IDENTITY, b"credential")
    assert decode("cd" * 32, IDENTITY, whole) is None  # another key's
    assert decode(KEY, b"1e" * 32, whole) is None  # fetched before an identity file changed
    assert decode(KEY, IDENTITY, whole.partition(b"\n")[0]) is None  # the header alone
    assert decode(KEY, IDENTITY, b"") is None  # the holder went away without an outcome
    assert decode(KEY, IDENTITY, whole.replace(b"credential 0", b"other 0", 1)) is None
    assert decode(KEY, IDENTITY, whole.replace(b"outcome/1", b"outcome/2", 1)) is None
    failure = encode(KEY, IDENTITY, BackendError("m", 3))
    assert decode(KEY, IDENTITY, failure.replace(b" 3\n", b" x\n", 1)) is None
    assert decode(KEY, IDENTITY, failure.partition(b"\n")[0]) is None  # no line's end
    assert decode(KEY, IDENTITY, failure.replace(b" 3\n", b" 3 more\n", 1)) is None


def test_a_surrogate_no_decoder_made_is_sent_escaped_not_raised() -> None:
    back = decode(KEY, IDENTITY, encode(KEY, IDENTITY, BackendError("a \ud800 b", 1)))
    assert isinstance(back, BackendError)
    assert back.message == "a \\ud800 b"


def test_an_empty_credential_is_no_outcome() -> None:
    assert decode(KEY, IDENTITY, encode(KEY, IDENTITY, b"")) is None


def wait_in_thread(waiter: Waiter) -> tuple[threading.Thread, list[bool]]:
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(waiter()))
    thread.start()
    return thread, got


def unique_name() -> str:
    """A socket name no other process uses: /proc/net/unix is the whole machine's, and
    another run of these tests may be queueing on its own `k.sock` at the same time."""
    return os.urandom(8).hex() + ".sock"


def wait_until_queued(path: Path, count: int) -> None:
    deadline = Deadline(30)
    while queued_on(path) != count:
        assert not deadline.passed(), "the waiters never queued"
        time.sleep(0.001)


def one_waiter_gets_the_outcome(path: Path, outcome: bytes = b"credential") -> bool:
    """A holder at `path`, one caller queued on it, an outcome: whether the caller got it
    whole."""
    waiter = Waiter(str(path), KEY, IDENTITY, Deadline(30))
    with Holder(str(path), KEY, IDENTITY) as holder:
        thread, got = wait_in_thread(waiter)
        wait_until_queued(path, 1)
        holder.outcome = outcome
    thread.join(30)
    return got == [True] and waiter.outcome == outcome


def test_a_large_credential_comes_whole_and_a_larger_outcome_than_any_not_at_all(
    tmp_path: Path,
) -> None:
    """A credential cut short must never pass for a whole one: past the bound (above
    anything a backend may print), no outcome, and the caller takes the lock."""
    header = len(encode(KEY, IDENTITY, b""))
    path = tmp_path / unique_name()
    assert one_waiter_gets_the_outcome(path, b"x" * (3 << 20))  # (once cut at 1 MiB)
    assert one_waiter_gets_the_outcome(path, b"x" * (_MAX_OUTCOME - header))
    assert not one_waiter_gets_the_outcome(path, b"x" * (_MAX_OUTCOME - header + 1))


@pytest.mark.parametrize("outcome", [b"the credential", BackendError("failed", 7, "do this")])
def test_every_caller_that_connected_meanwhile_gets_the_outcome(
    tmp_path: Path, outcome: bytes | BackendError
) -> None:
    path = tmp_path / unique_name()
    with Holder(str(path), KEY, IDENTITY) as holder:
        waiters = [Waiter(str(path), KEY, IDENTITY, Deadline(30)) for _ in range(3)]
        threads = [wait_in_thread(waiter) for waiter in waiters]
        wait_until_queued(path, 3)
        holder.outcome = outcome
    for thread, got in threads:
        thread.join(30)
        assert got == [True]
    for waiter in waiters:
        assert encode(KEY, IDENTITY, waiter.outcome) == encode(KEY, IDENTITY, outcome)  # type: ignore[arg-type]
    assert not path.exists()  # removed once sent


def test_a_holder_without_an_outcome_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / unique_name()
    waiter = Waiter(str(path), KEY, IDENTITY, Deadline(30))
    with Holder(str(path), KEY, IDENTITY):
        thread, got = wait_in_thread(waiter)
        wait_until_queued(path, 1)
    thread.join(30)
    assert got == [False]
    assert waiter.outcome is None


def test_a_caller_that_comes_after_the_outcome_does_not_get_it(tmp_path: Path) -> None:
    path = tmp_path / unique_name()
    with Holder(str(path), KEY, IDENTITY) as holder:
        holder.outcome = b"credential"
    assert Waiter(str(path), KEY, IDENTITY, Deadline(1))() is False  # no socket: the lock decides


def test_a_dead_holders_socket_refuses_and_the_next_holder_replaces_it(tmp_path: Path) -> None:
    import _socket

    path = tmp_path / unique_name()
    dead = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # its file stays, as after a kill -9
    assert Waiter(str(path), KEY, IDENTITY, Deadline(1))() is False
    assert one_waiter_gets_the_outcome(path)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_socket_is_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / unique_name()
    old = os.umask(umask)
    try:
        with Holder(str(path), KEY, IDENTITY):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert os.umask(old) == old  # (put back as it was)


def test_a_directory_path_too_long_for_a_socket_works_through_proc(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    path = deep / unique_name()
    assert len(str(path)) > 108
    descriptors = len(open_descriptors())
    assert one_waiter_gets_the_outcome(path)
    assert len(open_descriptors()) == descriptors  # the directory's fd closed again


def test_something_else_than_a_socket_of_ours_is_never_connected_to(tmp_path: Path) -> None:
    path = tmp_path / unique_name()
    os.mkfifo(path)
    assert Waiter(str(path), KEY, IDENTITY, Deadline(1))() is False  # (a FIFO: not even opened)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a socket of another owner needs root")
def test_a_socket_of_another_owner_is_never_connected_to(tmp_path: Path) -> None:
    path = tmp_path / unique_name()
    with Holder(str(path), KEY, IDENTITY) as holder:
        os.chown(path, 65534, 65534)
        holder.outcome = b"credential"
        assert Waiter(str(path), KEY, IDENTITY, Deadline(1))() is False
        assert queued_on(path) == 0


def test_a_waiter_stops_at_its_deadline(tmp_path: Path) -> None:
    path = tmp_path / unique_name()
    with Holder(str(path), KEY, IDENTITY) as holder:
        waiter = Waiter(str(path), KEY, IDENTITY, Deadline(0.2))
        assert waiter() is False  # connected, then the deadline came: the lock decides
        holder.outcome = b"too late"
