"""`expirationTimestamp` exactly as kubectl reads it: Go's time.Parse(time.RFC3339, s).

client-go decodes the field as a metav1.Time, whose UnmarshalJSON calls
`time.Parse(time.RFC3339, str)` (apimachinery pkg/apis/meta/v1/time.go). That is
Go's general layout parser for "2006-01-02T15:04:05Z07:00" (time/format.go), which
is both stricter and looser than RFC 3339 and than python-dateutil:
- `T` and `Z` upper case only; no space for `T`; the offset as `Z` or `±hh:mm` only;
- the hour may be one digit (`T5:04:05`), month, day, minute, second two, year four;
- a fraction of a second after the seconds, with `.` or `,`, of any length;
- offsets up to `±24:60` (Go tests its range with >, "as some people do write offsets
  of 24 hours or 60 minutes"); hour 24 and second 60 are out of range;
- the day is checked against its month, leap years included; years 0000 to 9999.
A form kubectl rejects must never be cached: kubectl would then fail on every call
until the bogus expiry passed. tests/test_timestamp.py asks the real
kubectl about a table of forms in the same run.
Pure, and only builtins: the instant is computed here, not by a date library.
"""

from __future__ import annotations

_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_since_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to the date (proleptic Gregorian, year 0 included)."""
    before = year - 1  # whole years before this one, counted from year 1
    days = before * 365 + before // 4 - before // 100 + before // 400
    days += _DAYS_BEFORE_MONTH[month - 1] + (month > 2 and _is_leap(year)) + day - 1
    return days - 719162  # the same count for 1970-01-01


class _Reader:
    """Go's parse loop over one value: each step consumes a field or raises ValueError."""

    def __init__(self, text: str) -> None:
        self.rest = text

    def digits(self, count: int) -> int:
        head = self.rest[:count]
        if len(head) < count or not (head.isascii() and head.isdigit()):
            raise ValueError(f"expected {count} digits at {self.rest!r}")
        self.rest = self.rest[count:]
        return int(head)

    def hour(self) -> int:
        # Go's getnum(value, false): one digit, or two when the second is a digit too.
        two = self.rest[:2]
        if len(two) == 2 and two.isascii() and two.isdigit():
            return self.digits(2)
        return self.digits(1)

    def literal(self, text: str) -> None:
        if not self.rest.startswith(text):
            raise ValueError(f"expected {text!r} at {self.rest!r}")
        self.rest = self.rest[len(text) :]

    def fraction(self) -> float:
        # Accepted after the seconds although the layout has none, with . or , (Go >= 1.17).
        rest = self.rest
        if len(rest) < 2 or rest[0] not in ".," or not ("0" <= rest[1] <= "9"):
            return 0.0
        end = 2
        while end < len(rest) and "0" <= rest[end] <= "9":
            end += 1
        digits, self.rest = rest[1:end], rest[end:]
        return int(digits[:9].ljust(9, "0")) / 1e9  # nanoseconds, as Go keeps them

    def offset(self) -> int:
        """Seconds east of UTC."""
        if self.rest.startswith("Z"):
            self.rest = self.rest[1:]
            return 0
        rest = self.rest
        if len(rest) < 6 or rest[3] != ":":
            raise ValueError(f"no Z or ±hh:mm offset at {rest!r}")
        sign, self.rest = rest[0], rest[1:3] + rest[4:6] + rest[6:]
        hours, minutes = self.digits(2), self.digits(2)
        if hours > 24 or minutes > 60 or sign not in "+-":
            raise ValueError(f"offset {rest[:6]!r} out of range")
        seconds = (hours * 60 + minutes) * 60
        return seconds if sign == "+" else -seconds


def parse_timestamp(text: str) -> float:
    """Unix seconds of `text` read as kubectl reads expirationTimestamp; ValueError if it
    would reject it."""
    read = _Reader(text)
    year = read.digits(4)
    read.literal("-")
    month = read.digits(2)
    read.literal("-")
    day = read.digits(2)
    read.literal("T")
    hour = read.hour()
    read.literal(":")
    minute = read.digits(2)
    read.literal(":")
    second = read.digits(2)
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        raise ValueError(f"{text!r}: a field is out of range")
    fraction = read.fraction()
    offset = read.offset()
    if read.rest:
        raise ValueError(f"{text!r}: extra text {read.rest!r}")
    if not 1 <= day <= _days_in(month, year):
        raise ValueError(f"{text!r}: day out of range")
    seconds = _days_since_epoch(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return float(seconds - offset) + fraction
