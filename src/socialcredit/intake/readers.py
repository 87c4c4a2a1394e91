"""Reading provider files: JSON lines or CSV, one event (or one error) per line.

Nothing here knows the policy: each line comes out as a raw dict or as an `InputError` that
names the line and the cause; validation (validation.py) comes next.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator

from ..errors import InvalidInput, excerpt

FIELDS = ("subject", "subject_kind", "type", "occurred_at", "provider", "key", "attributes")
REQUIRED = ("subject", "type", "occurred_at", "key")
# No field takes a longer number: a key is at most 200 characters, an attribute's number at
# most 16 digits. Python's own limit (4,300 digits) ends in a traceback.
LONGEST_NUMBER = 200


class InputError(InvalidInput):
    """One bad event: `line` says where, the message says why."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line


def read_jsonl(stream: Iterable[str], start: int = 1) -> Iterator[tuple[int, dict | InputError]]:
    """One JSON object a line, read strictly: what is not JSON (NaN, a name given twice in one
    object) is refused rather than read one way or another. `start` numbers the first line."""
    for number, line in enumerate(stream, start=start):
        if line.strip():
            yield number, parse_line(number, line)


def parse_line(number: int, line: str) -> dict | InputError:
    """One line of JSON lines that is not blank: its object, or what is wrong with it."""
    try:
        value = _STRICT_JSON.decode(line.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        return InputError(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except _Refused as exc:
        return InputError(number, str(exc))
    except RecursionError:  # the decoder recurses once for each level
        return InputError(number, "not valid JSON: nested too deeply (an event is an object whose attributes are "
                                  "one object of plain values)")
    if not isinstance(value, dict):
        return InputError(number, "expected a JSON object with subject, type, occurred_at, provider, key")
    return value


class JsonLines:
    """A JSON lines input, read as it is iterated (as `read_jsonl`), that can hand the lines
    it has not read yet to another reader: a long file's rest is read and validated in a
    second process while this one appends (intake/parallel.py)."""

    def __init__(self, stream: Iterable[str]):
        self._lines = iter(stream)
        self._read = 0  # lines read so far, blank ones too

    def __iter__(self) -> Iterator[tuple[int, dict | InputError]]:
        for line in self._lines:
            self._read += 1
            if line.strip():
                yield self._read, parse_line(self._read, line)

    def rest(self) -> tuple[int, Iterator[str]]:
        """(the number of the next line, the lines not read yet): iterate no more after this."""
        return self._read + 1, self._lines


class _Refused(ValueError):
    """Raised by the decoder's hooks for what Python's JSON module would read but an event is not."""


def _object(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) < len(pairs):  # which of the two was meant is anyone's guess
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise _Refused(f"the name {excerpt(twice)} appears twice in one object (which one is meant?)")
    return value


def _constant(name: str) -> float:
    raise _Refused(f"not valid JSON: {name} is not a JSON number")


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > LONGEST_NUMBER:
        raise _Refused(f"a number of {len(digits.lstrip('-')):,} digits (no field takes more than {LONGEST_NUMBER})")
    return int(digits)


_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_int=_integer)


def read_csv(stream: Iterable[str]) -> Iterator[tuple[int, dict | InputError]]:
    """CSV with the JSONL fields as columns; any other column is an attribute.

    Lines are those of the file (line 1 is the header); a row whose quoted cell spans lines
    is named by the line it starts on. A cell whose quote is never closed would swallow the
    rest of the file, so it ends the reading with an error.
    """
    reader = csv.reader(stream, strict=True)
    header: list[str] | None = None
    unnamed: list[int] = []  # columns with an empty header cell (a spreadsheet's trailing commas)
    while True:
        number = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, InputError(number, _csv_problem(str(exc)))
            if str(exc).startswith("field larger than field limit"):
                continue  # the reader has skipped that row and can go on
            return
        if not any(cell.strip() for cell in cells):  # a blank line, or a spreadsheet's empty row (,,,)
            continue
        if header is None:
            header = [name.lstrip("\ufeff").strip() for name in cells]
            problem = _header_problem(header)
            if problem is not None:
                yield number, InputError(number, problem)
                return
            unnamed = [i for i, name in enumerate(header) if not name]
            continue
        if len(cells) > len(header):
            yield number, InputError(number, "more cells than header columns")
            continue
        filled = next((i for i in unnamed if i < len(cells) and cells[i] != ""), None)
        if filled is not None:
            yield number, InputError(number, f"column {filled + 1} has a value but no name in the header")
            continue
        row = {name: cell for name, cell in zip(header, cells) if name}
        event = {name: row.pop(name) for name in FIELDS if name in row and name != "attributes"}
        # An empty cell is an absent attribute, not an empty string.
        event["attributes"] = {name: value for name, value in row.items() if value != ""}
        if not event.get("subject_kind"):
            event.pop("subject_kind", None)
        if not event.get("provider"):
            event.pop("provider", None)
        yield number, event


def _header_problem(header: list[str]) -> str | None:
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            # Every row would silently keep one of the two cells: refuse rather than guess.
            return f"the header has two columns named {excerpt(name)}"
        seen.add(name)
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        return f"the header lacks column(s) {', '.join(missing)}"
    return None


def _csv_problem(reason: str) -> str:
    if reason == "unexpected end of data":
        return 'a quoted cell that starts on this line is never closed (its closing " is missing)'
    if reason.startswith("field larger than field limit"):
        return f"a cell is longer than {csv.field_size_limit():,} characters, the most a CSV cell may hold"
    return f"not valid CSV ({reason})"


def utf8_lines(binary: Iterable[bytes], label: str) -> Iterator[str]:
    """The lines of a binary stream as text (a byte-order mark at the start left out), or
    `{label} line N: not UTF-8 text (... at byte K of the line)` for the first that is not."""
    for number, raw in enumerate(binary, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{label} line {number}: not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the "
                               "line)") from None


def read_events(stream: Iterable[str], fmt: str) -> Iterable[tuple[int, dict | InputError]]:
    if fmt == "jsonl":
        return JsonLines(stream)
    if fmt == "csv":
        return read_csv(stream)
    raise InvalidInput(f"unknown format {excerpt(fmt)} (jsonl or csv)")


def open_text(data: bytes | str) -> io.StringIO:
    return io.StringIO(data.decode("utf-8") if isinstance(data, bytes) else data)
