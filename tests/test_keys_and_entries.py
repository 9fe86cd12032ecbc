"""Pure pieces: key derivation, the entry format, freshness, the exec-info reader."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shim.entry import (
    AHEAD,
    EXPIRED,
    FRESH,
    MISSING,
    REFRESH,
    Entry,
    decode_entry,
    encode_entry,
    is_fresh,
    stage,
)
from shim.execinfo import (
    DEFAULT_API_VERSION,
    api_version,
    api_version_fast,
    cluster_info,
    requested_api_version,
)
from shim.keys import IDENTITY_ENV_VARS, cache_key

argvs = st.lists(st.text(min_size=0, max_size=8), min_size=1, max_size=5)
envs = st.dictionaries(st.sampled_from(IDENTITY_ENV_VARS), st.text(max_size=5), max_size=4)


@given(argvs, st.text(max_size=10), envs, argvs, st.text(max_size=10), envs)
def test_keys_differ_when_any_input_differs(
    argv1: list[str],
    api1: str,
    env1: dict[str, str],
    argv2: list[str],
    api2: str,
    env2: dict[str, str],
) -> None:
    assume((argv1, api1, env1) != (argv2, api2, env2))
    assert cache_key(argv1, api1, env1) != cache_key(argv2, api2, env2)


def test_keys_are_stable_file_names() -> None:
    key = cache_key(["aws", "eks"], DEFAULT_API_VERSION, {"AWS_PROFILE": "dev", "HOME": "/x"})
    assert key == cache_key(["aws", "eks"], DEFAULT_API_VERSION, {"AWS_PROFILE": "dev"})
    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")


def test_unset_and_empty_identity_variables_differ() -> None:
    assert cache_key(["a"], "v", {}) != cache_key(["a"], "v", {"AWS_PROFILE": ""})


def test_argv_boundaries_matter() -> None:
    assert cache_key(["a b"], "v", {}) != cache_key(["a", "b"], "v", {})
    assert cache_key(["ab", ""], "v", {}) != cache_key(["a", "b"], "v", {})


entries = st.builds(
    Entry,
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.binary(max_size=50),
    st.binary(max_size=200),
)


@given(entries)
def test_entries_round_trip(entry: Entry) -> None:
    decoded = decode_entry(encode_entry(entry))
    assert decoded is not None
    assert (decoded.expiry, decoded.fetched_at, decoded.meta, decoded.credential) == (
        entry.expiry,
        entry.fetched_at,
        entry.meta,
        entry.credential,
    )


@given(entries, st.data())
def test_any_truncation_or_changed_byte_is_not_an_entry(entry: Entry, data: st.DataObject) -> None:
    raw = encode_entry(entry)
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert decode_entry(raw[:cut]) is None
    at = data.draw(st.integers(0, len(raw) - 1))
    flipped = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    assert decode_entry(flipped) is None


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    decode_entry(raw)


@given(st.floats(0, 1e10), st.floats(0, 1e10), st.floats(0, 1e4))
def test_fresh_means_more_than_refresh_before_left(
    expiry: float, now: float, before: float
) -> None:
    assert is_fresh(expiry, now, before) == (expiry - before > now)


def test_freshness_edges() -> None:
    assert is_fresh(1000, 939, 60)
    assert not is_fresh(1000, 940, 60)
    assert not is_fresh(1000, 1001, 0)


def test_exec_info_as_client_go_writes_it() -> None:
    raw = (
        '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",'
        '"spec":{"cluster":{"server":"https://x","config":{"apiVersion":"evil"}},'
        '"interactive":true}}'
    )
    assert api_version_fast(raw) == "client.authentication.k8s.io/v1"
    assert requested_api_version({"KUBERNETES_EXEC_INFO": raw}) == "client.authentication.k8s.io/v1"
    assert requested_api_version({}) == DEFAULT_API_VERSION


def test_nested_api_version_first_is_left_to_json() -> None:
    raw = '{"spec":{"apiVersion":"evil"},"apiVersion":"client.authentication.k8s.io/v1"}'
    assert api_version_fast(raw) is None
    assert requested_api_version({"KUBERNETES_EXEC_INFO": raw}) == "client.authentication.k8s.io/v1"


exec_infos = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["apiVersion", "kind", "spec", 'a"', "x"]), children, max_size=4
        )
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(st.sampled_from(["kind", "apiVersion", "spec", "x"]), exec_infos),
    st.sampled_from([(",", ":"), (", ", ": ")]),
)
def test_the_fast_reader_agrees_with_json_whenever_it_answers(
    info: dict[str, object], separators: tuple[str, str]
) -> None:
    raw = json.dumps(info, separators=separators)
    fast = api_version_fast(raw)
    if fast is not None:
        assert fast == api_version(raw)


def crafted(fields: list[bytes], body: bytes, newline: bool = True) -> bytes:
    """An entry file as the format in shim/entry.py's docstring describes it, with its
    SHA-256 computed here, independently: fields, and the digest of fields + LF + body."""
    import hashlib

    header = b" ".join(fields)
    digest = hashlib.sha256(header + b"\n" + body).hexdigest().encode()
    return header + b" " + digest + (b"\n" + body if newline else b"")


def test_a_crafted_entry_of_this_format_is_read() -> None:
    entry = decode_entry(crafted([b"eks-token-shim-entry/1", b"20", b"10", b"2", b"3"], b"{}abc"))
    assert entry is not None
    assert (entry.expiry, entry.fetched_at, entry.meta, entry.credential) == (20, 10, b"{}", b"abc")


def test_another_format_or_a_missing_newline_is_no_entry_whatever_its_digest() -> None:
    assert (
        decode_entry(crafted([b"eks-token-shim-entry/2", b"20", b"10", b"0", b"3"], b"abc")) is None
    )
    empty = crafted([b"eks-token-shim-entry/1", b"20", b"10", b"0", b"0"], b"", newline=False)
    assert decode_entry(empty) is None


def test_a_header_has_at_most_256_bytes() -> None:
    def header_of(length: int) -> bytes:
        # Zeros before the expiry's digits stretch the header to `length`, digest included.
        padding = length - len(b"eks-token-shim-entry/1 20 10 0 3 ") - 64
        fields = [b"eks-token-shim-entry/1", b"0" * padding + b"20", b"10", b"0", b"3"]
        data = crafted(fields, b"abc")
        assert len(data.partition(b"\n")[0]) == length
        return data

    assert decode_entry(header_of(256)) is not None
    assert decode_entry(header_of(257)) is None


@given(st.lists(st.sampled_from([b"eks-token-shim-entry/1", b"1", b"0", b"x", b""]), max_size=8))
def test_headers_with_too_few_or_too_many_fields_never_raise(parts: list[bytes]) -> None:
    assert decode_entry(b" ".join(parts) + b"\nbody") is None


def test_the_lengths_must_add_up_to_the_body_whatever_its_digest() -> None:
    longer = crafted([b"eks-token-shim-entry/1", b"20", b"10", b"2", b"3"], b"{}abc-and-more")
    assert decode_entry(longer) is None


def test_an_entry_fetched_this_very_second_is_not_from_the_future() -> None:
    entry = Entry(expiry=1000, fetched_at=100, meta=b"", credential=b"x")
    assert stage(entry, 100.0, 60, 300, 3600) == FRESH
    assert stage(entry, 99.5, 60, 300, 3600) == MISSING


def test_each_stage_begins_exactly_at_its_bound() -> None:
    entry = Entry(expiry=1000, fetched_at=0, meta=b"", credential=b"x")

    def at(now: float, refresh_ahead: float = 300) -> str:
        return stage(entry, now, 60, refresh_ahead, 3600)

    assert (at(699.9), at(700)) == (FRESH, AHEAD)  # 300 s left: refresh ahead
    assert (at(939.9), at(940)) == (AHEAD, REFRESH)  # 60 s left: refresh in the foreground
    assert (at(999.9), at(1000)) == (REFRESH, EXPIRED)
    assert (at(939.9, refresh_ahead=0), at(940, refresh_ahead=0)) == (FRESH, REFRESH)
    short = (stage(entry, 999.4, 0.2, 0.5, 3600), stage(entry, 999.5, 0.2, 0.5, 3600))
    assert short == (FRESH, AHEAD)  # a window under a second is a window too
    capped = Entry(expiry=10**9, fetched_at=0, meta=b"", credential=b"x")
    assert stage(capped, 3599.9, 60, 300, 3600) == REFRESH  # max-age ends it at 3600
    assert stage(capped, 3600, 60, 300, 3600) == EXPIRED


@pytest.mark.parametrize(
    "raw",
    [
        '[1,"apiVersion":"v"]',  # not an object
        '{"a\\":1,"apiVersion":"v"}',  # an escaped quote makes the quotes look balanced
        '{"a":1 "apiVersion":"v"}',  # no "{" or "," before the key: not JSON
        '{"a":"b","c":"d,"apiVersion":"v"}',  # an odd number of quotes before it: in a string
        '{"a":"x\\",\\"apiVersion\\":\\"evil","apiVersion":"good"}',  # escaped, inside a string
        '{"a":["apiVersion"],"apiVersion":"good"}',  # a list before it
        '{"apiVersion":""}',  # empty: the default
        '{"apiVersion":5}',  # not a string: the default
        '{"apiVersion":["client.authentication.k8s.io/v1"]}',  # nor is this
        '{[,"apiVersion":"v"}',  # a "[" right after the brace: not JSON
        '{"kind":"x"}',  # no apiVersion at all
        '{"apiVersion":"v',  # cut off: not JSON
        '{"apiVersion":"caf\\u00e9/v1"}',  # an escape in the value
        '{"apiVersion":"client.authentication.k8s.io/v1"}',
        '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{}}',
    ],
)
def test_the_fast_reader_never_disagrees_with_json_on_odd_input(raw: str) -> None:
    """Whatever the fast reader answers is what JSON reads; anything but a non-empty
    string there (or no JSON at all) means the default, as `aws eks get-token` answers."""
    try:
        info = json.loads(raw)
    except ValueError:
        info = None
    value = info.get("apiVersion") if isinstance(info, dict) else None
    by_json = value if isinstance(value, str) and value else DEFAULT_API_VERSION
    fast = api_version_fast(raw)
    assert fast is None or fast == by_json, (raw, fast)
    assert api_version(raw) == by_json
    assert requested_api_version({"KUBERNETES_EXEC_INFO": raw}) == by_json


@pytest.mark.parametrize(
    ("raw", "cluster"),
    [
        (None, None),  # kubectl without provideClusterInfo: no variable
        ("not json", None),
        ('{"spec":{"cluster":{"server":"https://x"}}}', {"server": "https://x"}),
        ('{"spec":{"cluster":{"server":""}}}', None),  # nothing to ask
        ('{"spec":{"cluster":{"certificate-authority-data":"x"}}}', None),
        ('{"spec":{"cluster":["server"]}}', None),
        ('{"spec":[]}', None),
    ],
)
def test_cluster_info_is_there_only_with_a_server_to_ask(
    raw: str | None, cluster: dict[str, str] | None
) -> None:
    assert cluster_info({} if raw is None else {"KUBERNETES_EXEC_INFO": raw}) == cluster
