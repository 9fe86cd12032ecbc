"""shim.lookup: who is asking, and whether the same kubectl process asks again."""

from __future__ import annotations

import os

import pytest
from apiserver import ApiServer
from helpers import Shim, exec_info


def rewrite_served(shim: Shim, seconds_ago: float) -> None:
    (served,) = shim.cache_dir.glob("*.served")
    stamp, _, who = served.read_text().partition(" ")
    served.write_text(f"{float(stamp) - seconds_ago:.3f} {who}")


@pytest.mark.parametrize(("seconds_ago", "verified"), [(9.5, True), (10.5, False)])
def test_the_repeat_ask_window_is_ten_seconds(
    shim: Shim, seconds_ago: float, verified: bool
) -> None:
    with ApiServer(lambda token: True) as api:
        info = exec_info(api)
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
        rewrite_served(shim, seconds_ago)
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
    assert len(api.tokens) == (1 if verified else 0)


def test_no_served_note_unless_kubectl_asks(shim: Shim) -> None:
    shim.run("-c", "demo")  # from a shell: no KUBERNETES_EXEC_INFO
    assert list(shim.cache_dir.glob("*.served")) == []


def test_a_damaged_served_note_is_no_repeat_ask(shim: Shim) -> None:
    with ApiServer(lambda token: False) as api:
        info = exec_info(api)
        first = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout
        (served,) = shim.cache_dir.glob("*.served")
        who = served.read_text().partition(" ")[2]
        served.write_text(f"not-a-time {who}")
        assert shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout == first
    assert api.tokens == []  # not verified: the note said nothing readable


def test_without_proc_the_asking_process_is_its_pid_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has no /proc/PID/exe (and a parent may be gone): the identity is the pid."""
    from shim import lookup

    def no_proc(path: str) -> str:
        raise FileNotFoundError(path)

    monkeypatch.setattr(os, "readlink", no_proc)
    assert lookup.client_identity() == f"{os.getppid()} "
