"""Reading provider files: JSON lines or CSV, one event (or one error) per line.

Nothing here knows the policy: each line comes out as a raw dict or as an `InputError` that
names the line and the cause; validation (validation.py) comes next.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from ..errors import InvalidInput

FIELDS = ("subject", "subject_kind", "type", "occurred_at", "provider", "key", "attributes")
REQUIRED = ("subject", "type", "occurred_at", "key")


class InputError(InvalidInput):
    """One bad event: `line` says where, the message says why."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line


def read_jsonl(stream: Iterable[str]) -> Iterator[tuple[int, dict | InputError]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield number, InputError(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield number, InputError(number, "expected a JSON object with subject, type, occurred_at, provider, key")
            continue
        yield number, value


def read_csv(stream: Iterable[str]) -> Iterator[tuple[int, dict | InputError]]:
    """CSV with the JSONL fields as columns; any other column is an attribute."""
    reader = csv.DictReader(stream)
    if reader.fieldnames is None:
        return
    reader.fieldnames = [name.lstrip("\ufeff").strip() for name in reader.fieldnames]
    missing = [name for name in REQUIRED if name not in reader.fieldnames]
    if missing:
        yield 1, InputError(1, f"the header lacks column(s) {', '.join(missing)}")
        return
    for row in reader:
        number = reader.line_num
        if None in row:
            yield number, InputError(number, "more cells than header columns")
            continue
        event = {name: row.pop(name) for name in FIELDS if name in row and name != "attributes"}
        # An empty cell is an absent attribute, not an empty string.
        event["attributes"] = {name: value for name, value in row.items() if value not in ("", None)}
        if not event.get("subject_kind"):
            event.pop("subject_kind", None)
        if not event.get("provider"):
            event.pop("provider", None)
        yield number, event


def read_events(stream: Iterable[str], fmt: str) -> Iterator[tuple[int, dict | InputError]]:
    if fmt == "jsonl":
        return read_jsonl(stream)
    if fmt == "csv":
        return read_csv(stream)
    raise ValueError(f"unknown format {fmt!r} (jsonl or csv)")


def open_text(data: bytes | str) -> io.StringIO:
    return io.StringIO(data.decode("utf-8") if isinstance(data, bytes) else data)
