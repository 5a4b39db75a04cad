"""Reading an import file safely: encoding, CSV and JSON structure, field sizes and characters.

Every problem is a sentence naming the line (CSV) or entry (JSON) and why: a file that is not
UTF-8 (a Latin-1 export, UTF-16 without a byte-order mark), a CSV field longer than 131,072
characters, JSON nested too deeply, a lone surrogate or a control character in a value. The
file is read line by line (CSV) or entry by entry (JSON), so memory stays bounded by one row,
not the file; nothing here touches the database.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from engine.record.textsafe import TextError, check_text

#: A bigger file is refused before it is read (the largest expected is a few MB).
MAX_BYTES = 512 * 1024 * 1024
#: Python's csv default; a longer field is refused with its line, not a traceback.
MAX_FIELD = 131_072
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class InputError(ValueError):
    """The file cannot be read as an import; ``problems`` are (line, field, message)."""

    def __init__(self, problems: list[tuple[int, str, str]], where: str = "line"):
        self.problems, self.where = problems, where
        lines = "\n".join(f"  {where} {line}, field {fld}: {message}" if fld != "-" else f"  {where} {line}: {message}"
                          for line, fld, message in problems)
        super().__init__(f"Nothing was imported: {len(problems)} problem(s) found.\n{lines}")


def _encoding(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return "utf-8"


def _size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InputError([(0, "-", (f"{path.name} is {size / 1e6:.0f} MB; imports are limited to "
                                   f"{MAX_BYTES / 1e6:.0f} MB, split it"))], where="file")


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, decoded line with its line ending), strictly: UTF-8 (a BOM is skipped), or
    UTF-16/UTF-32 announced by their byte-order mark."""
    _size(path)
    encoding = _encoding(path)
    with path.open("rb") as raw:
        if encoding in ("utf-8", "utf-8-sig"):
            if encoding == "utf-8-sig":
                raw.read(3)
            for number, line in enumerate(raw, start=1):
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise InputError([(number, "-", (f"is not UTF-8 (byte 0x{line[error.start]:02X} at column "
                                                    f"{error.start + 1}); save the file as UTF-8 (a Latin-1 or "
                                                    "Windows-1252 export needs converting)"))]) from None
                if "\x00" in text:
                    raise InputError([(number, "-", ("holds a NUL byte: the file is probably UTF-16 without a "
                                                    "byte-order mark; save it as UTF-8"))])
                yield number, text
            return
        reader = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
        number = 0
        try:
            for number, text in enumerate(reader, start=1):
                yield number, text
        except UnicodeDecodeError as error:
            raise InputError([(number + 1, "-", (f"is not valid {encoding.upper()} ({error.reason}); save the file "
                                                "as UTF-8"))]) from None


def csv_rows(path: Path, required: tuple[str, ...], columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line of the row's start, {column: value}) for each CSV row; InputError for the header or a row
    that cannot be read."""
    current = {"line": 0}

    def lines() -> Iterator[str]:
        for number, text in text_lines(path):
            current["line"] = number
            yield text

    reader = csv.reader(lines(), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InputError([(1, "-", "the file is empty; it needs a header line " + ",".join(columns))])
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError([(1, c, f"column missing from the header (expected {','.join(columns)})") for c in missing])
        start = current["line"] + 1
        for values in reader:
            if any(len(v) > MAX_FIELD for v in values):
                raise InputError([(start, "-", f"a field is longer than {MAX_FIELD:,} characters")])
            if len(values) > len(header):
                raise InputError([(start, "-", f"{len(values)} fields, more than the {len(header)} columns of the header")])
            if values:
                yield start, dict(zip(header, values))
            start = current["line"] + 1
    except csv.Error as error:
        text = str(error)
        if "field larger than field limit" in text:
            text = f"a field is longer than {MAX_FIELD:,} characters"
        raise InputError([(current["line"], "-", f"not valid CSV: {text}")]) from None


def json_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(entry number from 1, {field: text}) for each object of a JSON list, decoded one entry at a time."""
    text = "".join(t for _, t in text_lines(path))
    decoder = json.JSONDecoder()
    position = _skip(text, 0)
    if not text.startswith("[", position):
        raise InputError([(1, "-", "the JSON file must hold a list of objects")], where="entry")
    position = _skip(text, position + 1)
    number = 0
    if text.startswith("]", position):
        return
    while True:
        number += 1
        try:
            item, position = decoder.raw_decode(text, position)
        except RecursionError:
            raise InputError([(number, "-", "nests too deeply; each entry is one flat object")], where="entry") from None
        except json.JSONDecodeError as error:
            raise InputError([(number, "-", f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}")],
                             where="entry") from None
        if not isinstance(item, dict):
            raise InputError([(number, "-", "is not an object")], where="entry")
        row: dict[str, str] = {}
        for key, value in item.items():
            if isinstance(value, (dict, list)):
                raise InputError([(number, str(key)[:40], "must be text or a number, not a list or an object")],
                                 where="entry")
            row[key] = "" if value is None else str(value)
        yield number, row
        position = _skip(text, position)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
            continue
        if text.startswith("]", position) and not text[_skip(text, position + 1):].strip():
            return
        raise InputError([(number, "-", ("the list is not closed properly after this entry (a ',' or a final ']' "
                                        "is expected)"))], where="entry")


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def check_row(row: dict[str, str], columns: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field, problem) for every value with a control character, a lone surrogate, or over its length."""
    problems = []
    for key, value in row.items():
        try:
            check_text("column name", key, limit=100)
        except TextError as error:
            problems.append(("-", str(error)))
            continue
        if key not in columns:
            continue
        try:
            check_text(key, value)
        except TextError as error:
            problems.append((key, str(error).split(": ", 1)[1]))
    return problems


def rows(path: Path, required: tuple[str, ...], columns: tuple[str, ...]) -> tuple[Iterator[tuple[int, dict[str, str]]], str]:
    """The rows of a .csv or .json import file and the word naming a row's position (line, entry)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return json_rows(path), "entry"
    if suffix == ".csv":
        return csv_rows(path, required, columns), "line"
    raise InputError([(0, "-", f"{path.name}: give a .csv or .json file")], where="file")
