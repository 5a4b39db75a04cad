"""Text that came from outside (a command line, an import, the API) checked before the database,
and recorded text made safe on its way out (a terminal, a spreadsheet).

The same checks run for SQLite and PostgreSQL: SQLite stores a 300-character symbol in a
VARCHAR(200) and a NUL byte in TEXT, PostgreSQL refuses both with a DataError; checking first
gives the same answer, a sentence, on both.
"""

from __future__ import annotations

import re
from datetime import date

#: Longest value per field, from the columns of engine/store/database.py.
LIMITS = {"id": 80, "period": 80, "symbol": 200, "source": 2000, "comment": 4000,
          "recorded_by": 120, "request": 80, "meeting": 40, "document": 200}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class TextError(ValueError):
    """A value refused before the database; the message names the field and why."""


def check_text(field: str, value: str | None, single_line: bool = True, limit: int | None = None) -> str | None:
    """The value unchanged, or TextError: too long, a NUL or another control character, a lone surrogate.

    >>> check_text("symbol", "XYZ/CONF/2024/1")
    'XYZ/CONF/2024/1'
    >>> check_text("id", "REQ-1\\r\\nBcc: x")
    Traceback (most recent call last):
    ...
    engine.record.textsafe.TextError: id: holds a control character (U+000D) at position 6; remove it
    """
    if value is None:
        return None
    limit = limit or LIMITS.get(field, 4000)
    if len(value) > limit:
        raise TextError(f"{field}: {len(value)} characters, at most {limit} are kept")
    found = (_LINE_CONTROL if single_line else _CONTROL).search(value)
    if found:
        raise TextError(f"{field}: holds a control character (U+{ord(found.group()):04X}) at position "
                        f"{found.start() + 1}; remove it")
    found = _SURROGATE.search(value)
    if found:
        raise TextError(f"{field}: holds a lone surrogate (U+{ord(found.group()):04X}), which is not text")
    return value


def printable(value: object) -> str:
    """Control characters shown as escapes, so that recorded text cannot drive the terminal.

    >>> printable("a\\x1b[2Jb\\n")
    'a\\\\x1b[2Jb\\\\n'
    """
    return _LINE_CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: str) -> str:
    """OWASP's advice against CSV injection: a cell a spreadsheet would run as a formula gets a
    leading apostrophe (and the writer quotes it). Undone by :func:`from_spreadsheet_cell`.

    >>> spreadsheet_cell("=HYPERLINK(\\"http://x\\")"), spreadsheet_cell("-2+3"), spreadsheet_cell("A/1")
    ('\\'=HYPERLINK("http://x")', "'-2+3", 'A/1')
    """
    return "'" + value if value.startswith(_FORMULA_START) or value.startswith("'") else value


def from_spreadsheet_cell(value: str) -> str:
    """The value :func:`spreadsheet_cell` neutralised, restored (an import reads its export).

    >>> from_spreadsheet_cell("'=1+1"), from_spreadsheet_cell("'plain"), from_spreadsheet_cell("''x")
    ('=1+1', "'plain", "'x")
    """
    if value.startswith("'") and value[1:].startswith((*_FORMULA_START, "'")):
        return value[1:]
    return value


# ----------------------------------------------------------------------------- dates and years

#: Dates the engine accepts: the arithmetic adds years and decades to them, and the calendar ends at 9999.
EARLIEST = (1900, 1, 1)
LATEST_EXCLUSIVE = (9000, 1, 1)
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_YEAR = re.compile(r"\d{4}", re.ASCII)


def parse_day(text: str, what: str = "date"):
    """A calendar date written YYYY-MM-DD with ASCII digits, from 1900-01-01 to 8999-12-31; else TextError.

    Python's ``date.fromisoformat`` also takes ``20250429`` and ``2024-W18-1``; a record must say
    what it means in the one form every reader knows.

    >>> parse_day("2025-04-29")
    datetime.date(2025, 4, 29)
    >>> parse_day("2024-W18-1")
    Traceback (most recent call last):
    ...
    engine.record.textsafe.TextError: date '2024-W18-1' is not a date; write it as YYYY-MM-DD, e.g. 2026-11-28
    """
    found = _DAY.fullmatch(text.strip()) if isinstance(text, str) else None
    try:
        day = date(*(int(g) for g in found.groups())) if found else None
    except ValueError:
        day = None
    if day is None:
        raise TextError(f"{what} {str(text)[:40]!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-28".lstrip())
    if not date(*EARLIEST) <= day < date(*LATEST_EXCLUSIVE):
        raise TextError(f"{what} {day.isoformat()} is out of range; give a date from 1900-01-01 to 8999-12-31".lstrip())
    return day


def parse_year(text: str, what: str = "year") -> int:
    """A calendar year written with four ASCII digits, 1900 to 8999; else TextError.

    >>> parse_year("2024")
    2024
    >>> parse_year("２０２４")
    Traceback (most recent call last):
    ...
    engine.record.textsafe.TextError: year '２０２４' is not a year; write it with four digits, e.g. 2024
    """
    text = str(text).strip()
    if not _YEAR.fullmatch(text):
        raise TextError(f"{what} {text[:40]!r} is not a year; write it with four digits, e.g. 2024".lstrip())
    year = int(text)
    if not EARLIEST[0] <= year < LATEST_EXCLUSIVE[0]:
        raise TextError(f"{what} {year} is out of range; give a year from {EARLIEST[0]} to {LATEST_EXCLUSIVE[0] - 1}".lstrip())
    return year
