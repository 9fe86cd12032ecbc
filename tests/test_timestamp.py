"""shim.timestamp: expirationTimestamp read exactly as kubectl reads it, kubectl the oracle."""

from __future__ import annotations

import datetime
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from apiserver import ApiServer, kubeconfig
from helpers import kubectl_version, require_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from shim.credential import Credential, validate
from shim.timestamp import parse_timestamp

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)

instants = st.datetimes(
    min_value=dt.datetime(1971, 1, 1),
    max_value=dt.datetime(9998, 1, 1),
    timezones=st.just(dt.timezone.utc),
)

V1BETA1 = "client.authentication.k8s.io/v1beta1"

FORMS = [
    # RFC 3339 as everyone writes it
    "2099-01-02T03:04:05Z",
    "2099-01-02T03:04:05+09:00",
    "2099-01-02T03:04:05-07:30",
    "2099-01-02T03:04:05-00:00",
    "2099-01-02T03:04:05.123Z",
    "2099-01-02T03:04:05.5+09:00",
    "2000-01-01T00:00:00Z",  # in the past: still parsed
    # Go's time.Parse is looser than RFC 3339 here...
    "2099-01-02T03:04:05,123Z",
    "2099-01-02T03:04:05.1234567891234Z",
    "2099-01-02T03:04:05+24:00",
    "2099-01-02T03:04:05+00:60",
    "2099-01-02T3:04:05Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2096-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
    # ...and stricter
    "2099-01-02t03:04:05Z",
    "2099-01-02T03:04:05z",
    "2099-01-02 03:04:05Z",
    "2099-01-02T03:04:05+0100",
    "2099-01-02T03:04:05+01",
    "2099-01-02T03:04:05",
    "2099-01-02T24:00:00Z",
    "2099-01-02T03:04Z",
    "2099-01-02T03:04:05.Z",
    "2099-01-02T03:04:60Z",
    "2099-01-02T03:04:05+25:00",
    "2099-01-02T03:04:05+00:61",
    "2099-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2099-13-01T00:00:00Z",
    "2099-00-01T00:00:00Z",
    "2099-1-02T03:04:05Z",
    "2099-01-02T003:04:05Z",
    "2099-01-02",
    " 2099-01-02T03:04:05Z",
    "2099-01-02T03:04:05Z ",
    "2099-01-02T03:04:05ZZ",
    "\uff12\uff10\uff19\uff19-01-02T03:04:05Z",  # full-width digits
    "2099-01-02T03:04:05+01000",
    "2099-01-02T03:04:05*09:00",
    "2099-01-02T03:04:05+09:00X",
    "2099-01-02T03:04:05+0x:00",
    "2099-01-02T3Z:04:05Z",
    "2099-01-02T03:04:05,Z",
    "2099-01-02T03:04:05.1",
    "2099-01-02T03:04:05+09:0",  # the offset's minutes cut short at the end
    "2099-01-32T00:00:00Z",
    "2099-01-02T03:60:05Z",
    "2_99-01-02T03:04:05Z",  # digits as Python's int() reads them, not as Go does
    "2099-+1-02T03:04:05Z",
    "2099-01-02T03:04:05.+1Z",
    "",
]


def versioned_kubectl() -> str:
    """The newest `kubectl.1.NN` beside the Google Cloud SDK dispatcher (one plugin run per
    command instead of two), else the kubectl on PATH."""
    kubectl = os.path.realpath(require_tool("kubectl"))
    beside = sorted(Path(kubectl).parent.glob("kubectl.1.*"), key=lambda path: int(path.suffix[1:]))
    return str(beside[-1]) if beside else kubectl


def credential(stamp: str) -> bytes:
    status = {"token": "t", "expirationTimestamp": stamp}
    return json.dumps({"kind": "ExecCredential", "apiVersion": V1BETA1, "status": status}).encode()


@given(instants, offsets, st.sampled_from(["seconds", "milliseconds", "microseconds"]))
def test_rfc3339_with_any_offset_is_the_same_instant(
    instant: dt.datetime, offset: dt.timezone, precision: str
) -> None:
    text = instant.astimezone(offset).isoformat(timespec=precision)
    expected = instant.replace(microsecond=0) if precision == "seconds" else instant
    if precision == "milliseconds":
        expected = instant.replace(microsecond=instant.microsecond // 1000 * 1000)
    assert parse_timestamp(text) == expected.timestamp()
    if text.endswith("+00:00"):
        assert parse_timestamp(text[:-6] + "Z") == expected.timestamp()


def test_a_plus_nine_stamp_is_nine_hours_before_the_same_wall_clock_in_utc() -> None:
    assert parse_timestamp("2030-01-01T09:00:00+09:00") == parse_timestamp("2030-01-01T00:00:00Z")


@pytest.mark.real_kubectl
def test_the_shim_accepts_exactly_the_timestamps_kubectl_accepts(tmp_path: Path) -> None:
    kubectl = versioned_kubectl()
    kubectl_says: dict[str, bool] = {}
    with ApiServer(lambda token: token == "t") as api:
        for number, stamp in enumerate(FORMS):
            printed = tmp_path / f"credential{number}.json"
            printed.write_bytes(credential(stamp))
            config = tmp_path / f"kubeconfig{number}"
            config.write_text(kubeconfig(api, "/bin/cat", [str(printed)]))
            result = kubectl_version(kubectl, dict(os.environ), config)
            if result.returncode != 0:
                assert b"parsing time" in result.stderr, (stamp, result.stderr.decode())
            kubectl_says[stamp] = result.returncode == 0
    shim_says = {
        stamp: isinstance(validate(credential(stamp), V1BETA1), Credential) for stamp in FORMS
    }
    disagreements = {
        stamp: kubectl_says[stamp] for stamp in FORMS if shim_says[stamp] != kubectl_says[stamp]
    }
    assert disagreements == {}, f"kubectl accepts (True) or rejects (False): {disagreements}"
    # The table means something only if it holds both kinds.
    assert sum(kubectl_says.values()) >= 10
    assert len(FORMS) - sum(kubectl_says.values()) >= 10


def test_offsets_beyond_python_s_range_are_read_as_go_reads_them() -> None:
    utc = parse_timestamp("2099-01-02T03:04:05Z")
    assert parse_timestamp("2099-01-02T03:04:05+24:00") == utc - 24 * 3600
    assert parse_timestamp("2099-01-02T03:04:05-00:60") == utc + 3600
    assert parse_timestamp("2099-01-02T3:04:05Z") == utc
    assert parse_timestamp("2099-01-02T03:04:05,25Z") == utc + 0.25
    # Nanoseconds, as Go keeps them (near 1970, where a float still holds them).
    assert parse_timestamp("1970-01-01T00:00:00.123456789Z") == 0.123456789
    assert parse_timestamp("1970-01-01T00:00:00.1234567899Z") == 0.123456789


@settings(max_examples=400, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30)
    ),
    minutes_east=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
    separator=st.sampled_from(".,"),
)
def test_every_instant_is_the_one_python_s_calendar_gives(
    moment: datetime.datetime, minutes_east: int, separator: str
) -> None:
    """Any date of years 1 to 9999 (every month, leap days included), any offset, any
    fraction: the instant is the one Python's own calendar computes."""
    zone = datetime.timezone(datetime.timedelta(minutes=minutes_east))
    aware = moment.replace(tzinfo=zone)
    sign, east = ("+" if minutes_east >= 0 else "-"), abs(minutes_east)
    text = (
        f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}{separator}{moment.microsecond:06d}"
        f"{sign}{east // 60:02d}:{east % 60:02d}"
    )
    expected = (aware - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds()
    assert parse_timestamp(text) == pytest.approx(expected, abs=1e-6)
    assert parse_timestamp(text.replace(f"{separator}{moment.microsecond:06d}", "")) == int(
        expected - moment.microsecond / 1e6
    )


@pytest.mark.parametrize(
    ("day", "valid"),
    [
        ("1900-02-29", False),  # divisible by 100: no leap day
        ("2000-02-29", True),  # by 400: a leap day
        ("2024-02-29", True),
        ("2024-02-30", False),
        ("2023-02-29", False),
        ("0000-02-29", True),  # year 0 is a leap year in Go's proleptic calendar
        ("2099-04-31", False),
        ("2099-06-31", False),
        ("2099-09-31", False),
        ("2099-11-31", False),
        ("2099-12-31", True),
        ("2099-01-31", True),
        ("2099-01-32", False),
        ("2099-03-32", False),
        ("2099-01-00", False),
        ("2099-13-01", False),
        ("2099-00-01", False),
    ],
)
def test_days_are_checked_against_their_month(day: str, valid: bool) -> None:
    text = f"{day}T00:00:00Z"
    if valid:
        parse_timestamp(text)
    else:
        with pytest.raises(ValueError, match="out of range"):
            parse_timestamp(text)
