"""A validated policy document kept as plain JSON, so that opening a registry need not validate it.

Validating a policy's text takes the validation library (pydantic) and its models, which cost
a short command about as much as all its own work. The document a validation produced is
plain data, though, so a registry keeps it beside the activation (a derived row, like a
standing): the next process rebuilds the same document from it as read-only records, compiles
it as usual, and never imports pydantic. `Policy.document` still validates the text when the
document itself is asked for (`policy show`, the linter, the policy in words).

A snapshot is trusted only for the text it was taken from (its digest) and for the code that
took it (`CODE`: a digest of the schema's and the compiler's source), so a changed schema —
a new default, a renamed field — is never read through an old snapshot; the text is then
validated again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .compiled import Policy

_RECORD = "__record__"  # marks a model in the JSON; dictionaries in the schema never have the key


def _code_digest() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in ("schema.py", "compiled.py", "snapshot.py"):
        try:
            digest.update((here / name).read_bytes())
        except OSError:  # no source beside the code (a zipped install): no snapshot is ever trusted
            return "no-source"
    return digest.hexdigest()[:32]


CODE = _code_digest()


class Record:
    """A model's fields, read as attributes; immutable like the frozen model it stands for."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, Any]):
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a policy record is read-only ({name})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(json.dumps(_encode(self), sort_keys=True))

    def __repr__(self) -> str:
        return f"Record({self._fields!r})"


def snapshot(policy: Policy) -> str:
    """The policy's validated document as JSON, stamped with its text's digest and the code."""
    return json.dumps({"code": CODE, "digest": policy.digest, "document": _encode(policy.document)},
                      separators=(",", ":"), ensure_ascii=False)


def from_snapshot(value: str, text: str, source: str) -> Policy | None:
    """The policy compiled from a snapshot of `text`, or None when the snapshot is not for this
    text or this code (then the text is validated as usual)."""
    kept = _ours(value)
    if kept is None or kept.get("digest") != hashlib.sha256(text.encode("utf-8")).hexdigest():
        return None
    return Policy(_decode(kept["document"]), text, source, validated=False)


def taken_by_this_code(value: str) -> bool:
    """Whether this code would read the snapshot (others are ignored, as if there were none)."""
    return _ours(value) is not None


def _ours(value: str) -> dict | None:
    try:
        kept = json.loads(value)
    except ValueError:
        return None
    if not isinstance(kept, dict) or kept.get("code") != CODE or not isinstance(kept.get("document"), dict):
        return None
    return kept


def _encode(value: Any) -> Any:
    fields = getattr(value, "_fields", None)
    if isinstance(value, Record):
        return {_RECORD: {name: _encode(v) for name, v in fields.items()}}
    model_fields = getattr(type(value), "model_fields", None)
    if model_fields is not None:  # a pydantic model: every field, defaults included
        return {_RECORD: {name: _encode(getattr(value, name)) for name in model_fields}}
    if isinstance(value, dict):
        return {key: _encode(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _RECORD in value:
            return Record({name: _decode(v) for name, v in value[_RECORD].items()})
        return {key: _decode(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
