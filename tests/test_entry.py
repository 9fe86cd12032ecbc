"""shim.entry: the entry format (self-checking) and the stages of a cached token's life."""

from __future__ import annotations

from hypothesis import given
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
    watched_bytes,
)

# Paths as the OS gives them: no NUL, no surrogate but the escapes of bytes not UTF-8.
paths = st.lists(
    st.text(
        st.characters(blacklist_characters="\0", codec="utf-8") | st.sampled_from("\udc80\udcff"),
        min_size=1,
        max_size=30,
    ),
    max_size=5,
)
entries = st.builds(
    Entry,
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.binary(max_size=50),
    st.binary(max_size=200),
    paths.map(watched_bytes),
    st.text("0123456789abcdef", min_size=64, max_size=64).map(str.encode),
)
MAGIC = b"eks-token-shim-entry/2"
FINGERPRINT = b"f" * 64


def crafted(fields: list[bytes], body: bytes, newline: bool = True) -> bytes:
    """An entry file as the format in shim/entry.py's docstring describes it, with its
    SHA-256 computed here, independently: fields, and the digest of fields + LF + body."""
    import hashlib

    header = b" ".join(fields)
    digest = hashlib.sha256(header + b"\n" + body).hexdigest().encode()
    return header + b" " + digest + (b"\n" + body if newline else b"")


@given(entries)
def test_entries_round_trip(entry: Entry) -> None:
    decoded = decode_entry(encode_entry(entry))
    assert decoded is not None
    fields = ("expiry", "fetched_at", "meta", "credential", "watched", "fingerprint")
    assert [getattr(decoded, name) for name in fields] == [getattr(entry, name) for name in fields]


@given(paths)
def test_the_watched_paths_come_back_as_they_were_recorded(names: list[str]) -> None:
    entry = decode_entry(encode_entry(Entry(1, 0, b"", b"x", watched_bytes(names))))
    assert entry is not None
    assert entry.watched_paths() == names


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


def test_a_crafted_entry_of_this_format_is_read() -> None:
    fields = [MAGIC, b"20", b"10", b"2", b"5", b"3", FINGERPRINT]
    entry = decode_entry(crafted(fields, b"{}/a\0/babc"))
    assert entry is not None
    assert (entry.expiry, entry.fetched_at, entry.meta, entry.credential) == (20, 10, b"{}", b"abc")
    assert (entry.watched_paths(), entry.fingerprint) == (["/a", "/b"], FINGERPRINT)


def test_another_format_or_a_missing_newline_is_no_entry_whatever_its_digest() -> None:
    old = crafted([b"eks-token-shim-entry/1", b"20", b"10", b"0", b"3"], b"abc")
    assert decode_entry(old) is None  # the format before the identity files
    other = [b"eks-token-shim-entry/3", b"20", b"10", b"0", b"0", b"3", FINGERPRINT]
    assert decode_entry(crafted(other, b"abc")) is None
    fields = [MAGIC, b"20", b"10", b"0", b"0", b"0", FINGERPRINT]
    empty = crafted(fields, b"", newline=False)
    assert decode_entry(empty) is None


def test_a_header_has_at_most_256_bytes() -> None:
    def header_of(length: int) -> bytes:
        # Zeros before the expiry's digits stretch the header to `length`, digest included.
        padding = length - len(MAGIC + b" 20 10 0 0 3  ") - 2 * 64
        fields = [MAGIC, b"0" * padding + b"20", b"10", b"0", b"0", b"3", FINGERPRINT]
        data = crafted(fields, b"abc")
        assert len(data.partition(b"\n")[0]) == length
        return data

    assert decode_entry(header_of(256)) is not None
    assert decode_entry(header_of(257)) is None


@given(st.lists(st.sampled_from([MAGIC, b"1", b"0", b"x", b""]), max_size=10))
def test_headers_with_too_few_or_too_many_fields_never_raise(parts: list[bytes]) -> None:
    assert decode_entry(b" ".join(parts) + b"\nbody") is None


def test_the_lengths_must_add_up_to_the_body_whatever_its_digest() -> None:
    longer = crafted([MAGIC, b"20", b"10", b"2", b"0", b"3", FINGERPRINT], b"{}abc-and-more")
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
