"""shim.execinfo: what kubectl asks for in KUBERNETES_EXEC_INFO, read fast or as JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shim.execinfo import (
    DEFAULT_API_VERSION,
    api_version,
    api_version_fast,
    cluster_info,
    requested_api_version,
)

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
