"""shim.meta: an entry's metadata, and text safe for any terminal."""

from __future__ import annotations


def test_metadata_that_cannot_be_read_is_empty_and_any_text_is_printable() -> None:
    from shim.meta import decode, printable

    assert decode(b"not json") == {}
    assert decode(b"[1]") == {}
    assert decode(b'{"cluster": "c"}') == {"cluster": "c"}
    assert printable("caf\udce9") == "caf\\xe9"  # a byte that was not UTF-8
    assert printable("\ud800") == "\\ud800"  # a surrogate no decoder made


def test_exactly_the_control_characters_are_shown_escaped() -> None:
    """C0 and DEL and C1 (U+0080-U+009F) could move a terminal's cursor or worse; the
    characters after them, from U+00A0 on, are text."""
    from shim.meta import printable

    assert printable("\x1f\x20\x7e\x7f") == "\\x1f \x7e\\x7f"
    assert printable("\x80\x9f\xa0\xe9") == "\\x80\\x9f\xa0\xe9"
