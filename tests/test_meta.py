"""shim.meta: an entry's metadata, and text safe for any terminal."""

from __future__ import annotations


def test_metadata_that_cannot_be_read_is_empty_and_any_text_is_printable() -> None:
    from shim.meta import decode, printable

    assert decode(b"not json") == {}
    assert decode(b"[1]") == {}
    assert decode(b'{"cluster": "c"}') == {"cluster": "c"}
    assert printable("caf\udce9") == "caf\\xe9"  # a byte that was not UTF-8
    assert printable("\ud800") == "\\ud800"  # a surrogate no decoder made
