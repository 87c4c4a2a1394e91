"""A registry as Parquet files a researcher opens as they are (DuckDB, pandas, Spark), and the
check that such an export still holds the ledger it says it holds.

Layout of an export folder:

    manifest.json                         what this is, the checkpoint (size, root) it was taken at,
                                          the policy in force, and every file with its rows and a
                                          digest of the leaf hashes it holds
    ledger/events/<event type>/part-NNNNN.parquet
    ledger/voids/part-NNNNN.parquet       corrections (the entry each cancels, and why)
    ledger/policies/part-NNNNN.parquet    policy activations (id, version, digest; the text in body)
    ledger/keys/part-NNNNN.parquet        the pseudonym key's fingerprint anchors
    standings/part-NNNNN.parquet          with --standings: the materialized standings
    decisions/part-NNNNN.parquet          with --decisions: the decision log

Why the ledger is partitioned by event type (and then by row count, `ROWS_PER_FILE`): each
event type has its own attributes, so only within one type can they be typed columns
(`attr_<name>`: int64, double, bool or string, as the values are), and one folder is one table
with one schema (`pd.read_parquet("ledger/events/traffic.violation")`); a question about a
population is nearly always about some types of event, which then read only their own files.
Across every type, the shared columns read as one table
(`read_parquet('ledger/**/*.parquet', union_by_name = true)` in DuckDB; Spark with an explicit
schema of the shared columns). A seq-range layout would make the Merkle check a little simpler
(contiguous leaves per file) and every researcher's query worse; the check sorts by seq instead.

Every ledger row has the shared columns `seq` (the recorded position), `kind`, `recorded_at`,
`body` (the canonical JSON the leaf hash covers: `ledger.entries`) and `leaf_hash` (hex), so
`verify_export` rebuilds each leaf from `body`, checks that the typed columns say what the body
says, and recomputes the Merkle root of entries 0..size-1 to compare with the manifest's.
(`actor`, the rater of a rating, is the registry's index column beside the entry, not part of
the body: it is exported as stored and not covered by the check.)
Subjects are the registry's pseudonyms, as in the ledger: no raw reference is in a ledger at
all. The decision log is exported without the caller's principal and purpose (the purpose is
free text a caller wrote, which can name a person); the audit log is not exported.

A consistent rewrite of every file *and* the manifest cannot be seen from the export alone:
compare the manifest's root with a tree head published earlier (`root --publish`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, NotFound, excerpt
from ..instants import format_instant, now_us
from ..ledger.entries import EVENT, KEY, POLICY, VOID, Entry, canonical_json
from ..ledger.merkle import Frontier, leaf_hash
from ..results import Exported, ExportProblem, ExportVerifyReport
from ..store import Store

FORMAT = "socialcredit-export"
VERSION = 1
MANIFEST = "manifest.json"
ROWS_PER_FILE = 500_000
_PARTS = {VOID: "voids", POLICY: "policies", KEY: "keys"}
_SHARED = ("seq", "kind", "recorded_at", "body", "leaf_hash")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - the extra is installed with the tests
        raise InvalidInput("the Parquet export needs pyarrow: pip install 'socialcredit[spark]'") from None
    return pa, pq


# -- rows, as each kind of entry is laid out --------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _instant(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def entry_columns(entry: Entry, body: str, leaf: str, actor: str | None) -> dict[str, Any]:
    """The row an entry is exported as: shared columns, then what its kind (or type) has."""
    row: dict[str, Any] = {"seq": entry.seq, "kind": entry.kind, "recorded_at": _instant(entry.recorded_us)}
    if entry.kind == EVENT:
        row.update(subject=entry.subject, subject_kind=entry.subject_kind, type=entry.type,
                   occurred_at=_instant(entry.occurred_us), provider=entry.provider, key=entry.key, actor=actor,
                   derived=None if entry.derived is None else canonical_json(entry.derived))
        for name, value in entry.attributes.items():
            row["attr_" + name] = value
    elif entry.kind == VOID:
        row.update(subject=entry.subject, target=entry.target, reason=entry.reason)
    elif entry.kind == POLICY:
        policy = entry.policy or {}
        row.update(policy_id=policy.get("id"), policy_version=policy.get("version"),
                   policy_digest=policy.get("digest"), key_fingerprint=entry.key_fingerprint)
    else:
        row.update(key_fingerprint=entry.key_fingerprint)
    row.update(body=body, leaf_hash=leaf)
    return row


def _partition(entry: Entry) -> str:
    if entry.kind == EVENT:
        return f"ledger/events/{entry.type}"
    return f"ledger/{_PARTS.get(entry.kind, 'other')}"


def _schema(pa, rows: list[dict]):
    """The typed schema of one file's rows: fixed columns first, attributes as their values are."""
    fixed = {
        "seq": pa.int64(), "kind": pa.string(), "recorded_at": pa.timestamp("us", tz="UTC"),
        "subject": pa.string(), "subject_kind": pa.string(), "type": pa.string(),
        "occurred_at": pa.timestamp("us", tz="UTC"), "provider": pa.string(), "key": pa.string(),
        "actor": pa.string(), "derived": pa.string(), "target": pa.int64(), "reason": pa.string(),
        "policy_id": pa.string(), "policy_version": pa.string(), "policy_digest": pa.string(),
        "key_fingerprint": pa.string(), "body": pa.string(), "leaf_hash": pa.string(),
    }
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    attributes = sorted(n for n in names if n.startswith("attr_"))
    fields = [pa.field(n, fixed[n]) for n in fixed if n in names and n not in ("body", "leaf_hash")]
    fields += [pa.field(n, _attribute_type(pa, [row.get(n) for row in rows])) for n in attributes]
    fields += [pa.field("body", pa.string()), pa.field("leaf_hash", pa.string())]
    return pa.schema(fields)


def _attribute_type(pa, values: list):
    """bool, int64, double (ints and floats mixed) or, for anything else, string (JSON text)."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int} and all(-(2**63) <= v < 2**63 for v in present):
        return pa.int64()
    if kinds in ({float}, {int, float}):
        return pa.float64()
    return pa.string()


def _cell(value: Any, arrow_type, pa) -> Any:
    if value is None:
        return None
    if arrow_type == pa.string() and not isinstance(value, str):
        return canonical_json(value)
    if arrow_type == pa.float64():
        return float(value)
    return value


def _table(pa, rows: list[dict], schema=None):
    schema = schema or _schema(pa, rows)
    columns = {}
    for field in schema:
        columns[field.name] = pa.array([_cell(row.get(field.name), field.type, pa) for row in rows], type=field.type)
    return pa.table(columns, schema=schema)


# -- writing ----------------------------------------------------------------------------------


def _leaves_digest(leaves: list[tuple[int, str]]) -> str:
    """SHA-256 over a file's (seq, leaf hash) pairs in seq order: names the file an edit is in."""
    digest = hashlib.sha256()
    for seq, leaf in sorted(leaves):
        digest.update(f"{seq}:{leaf}\n".encode())
    return digest.hexdigest()


def _standings_schema(pa):
    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([("subject", pa.string()), ("policy_digest", pa.string()), ("known_size", pa.int64()),
                      ("valid_from", ts), ("valid_until", ts), ("cacheable", pa.bool_()), ("score", pa.float64()),
                      ("tier", pa.string()), ("body", pa.string())])


def _decisions_schema(pa):
    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([("position", pa.int64()), ("id", pa.string()), ("subject", pa.string()),
                      ("service", pa.string()), ("at", ts), ("policy_digest", pa.string()),
                      ("ledger_size", pa.int64()), ("allowed", pa.bool_()), ("effect", pa.string()),
                      ("measures", pa.string()), ("recorded_at", ts), ("role", pa.string()), ("chain", pa.string())])


class _Writer:
    def __init__(self, pa, pq, root: Path):
        self.pa, self.pq, self.root = pa, pq, root
        self.files: list[dict] = []
        self._counts: dict[str, int] = {}

    def write(self, part: str, rows: list[dict], schema=None) -> None:
        if not rows:
            return
        number = self._counts.get(part, 0)
        self._counts[part] = number + 1
        name = f"{part}/part-{number:05d}.parquet"
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pq.write_table(_table(self.pa, rows, schema), path, compression="zstd")
        entry: dict[str, Any] = {"path": name, "rows": len(rows)}
        if schema is None:  # a ledger file
            entry["leaves_sha256"] = _leaves_digest([(row["seq"], row["leaf_hash"]) for row in rows])
        self.files.append(entry)


def write_export(store: Store, out: Path, *, standings: bool = False, decisions: bool = False,
                 policy: dict | None = None, progress: Callable[[int], None] | None = None,
                 rows_per_file: int = ROWS_PER_FILE) -> Exported:
    """Write the ledger (up to its last checkpoint), and optionally the standings and the decision
    log, under `out` (a new or empty folder): all of it, or nothing (written aside, then renamed)."""
    pa, pq = _pyarrow()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out}: already exists and is not an empty folder; give a new folder for the export")
    if not out.parent.is_dir():
        raise NotFound(f"{out.parent}: no such folder")
    checkpoint = store.ledger.last_checkpoint()
    size, root = (checkpoint.size, checkpoint.root.hex()) if checkpoint else (0, Frontier().root().hex())
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise InvalidInput(f"{out.parent}: cannot write there ({exc.strerror or exc})") from None
    try:
        writer = _Writer(pa, pq, staging)
        counts = _write_ledger(store, writer, size, progress, rows_per_file)
        standing_rows = _write_standings(store, writer, progress, rows_per_file) if standings else None
        decision_rows = _write_decisions(store, writer, progress, rows_per_file) if decisions else None
        manifest = {
            "format": FORMAT, "version": VERSION, "exported_at": format_instant(now_us()),
            "checkpoint": {"size": size, "root": root},
            "policy": policy,
            "entries": counts, "standings": standing_rows, "decisions": decision_rows,
            "files": writer.files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Exported(str(out), size, root, counts, standing_rows, decision_rows, len(writer.files))


def _write_ledger(store: Store, writer: _Writer, size: int, progress, rows_per_file: int) -> dict[str, int]:
    from ..store.ledger import row_entry

    buffers: dict[str, list[dict]] = {}
    counts: dict[str, int] = {}
    done = 0
    for stored in store.ledger.iter_rows():
        if stored.seq >= size:
            break  # appended after the checkpoint this export is taken at
        entry = row_entry((stored.seq, stored.kind, stored.recorded_us, stored.subject, stored.type,
                           stored.occurred_us, stored.provider, stored.key, stored.body))
        part = _partition(entry)
        rows = buffers.setdefault(part, [])
        rows.append(entry_columns(entry, stored.body, stored.leaf_hash.hex(), stored.actor))
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
        if len(rows) >= rows_per_file:
            writer.write(part, rows)
            buffers[part] = []
        done += 1
        if progress is not None and done % 5_000 == 0:
            progress(5_000)
    for part, rows in sorted(buffers.items()):
        writer.write(part, rows)
    if progress is not None:
        progress(done % 5_000)
    return counts


def _write_standings(store: Store, writer: _Writer, progress, rows_per_file: int) -> int:
    rows = ({"subject": row.subject, "policy_digest": row.policy_digest, "known_size": row.known_size,
             "valid_from": _instant(row.valid_from_us), "valid_until": _instant(row.valid_until_us),
             "cacheable": row.cacheable, "score": float(row.score), "tier": row.tier, "body": row.body}
            for row in store.standings.rows())
    return _write_in_files(writer, "standings", _standings_schema(writer.pa), rows, progress, rows_per_file)


def _write_decisions(store: Store, writer: _Writer, progress, rows_per_file: int) -> int:
    rows = ({"position": log_row.seq, "id": d.id, "subject": d.subject, "service": d.service,
             "at": _instant(d.at_us), "policy_digest": d.policy_digest, "ledger_size": d.ledger_size,
             "allowed": bool(d.allowed), "effect": d.effect, "measures": d.measures,
             "recorded_at": _instant(d.recorded_us), "role": d.role,
             "chain": None if log_row.chain is None else bytes(log_row.chain).hex()}
            for log_row in store.decisions.chained() for d in (log_row.values,))  # d: a DecisionRow
    return _write_in_files(writer, "decisions", _decisions_schema(writer.pa), rows, progress, rows_per_file)


def _write_in_files(writer: _Writer, part: str, schema, rows, progress, rows_per_file: int) -> int:
    """Rows written under `part`, `rows_per_file` to a file (the last one may be shorter); how many."""
    batch: list[dict] = []
    total = 0
    for row in rows:
        batch.append(row)
        total += 1
        if len(batch) >= rows_per_file:
            writer.write(part, batch, schema)
            batch = []
        if progress is not None:
            progress(1)
    writer.write(part, batch, schema)
    return total


def jdbc_url(url) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties of a PostgreSQL registry's URL (for Spark's reads)."""
    from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

    if url.backend != "postgresql" or not url.conninfo:
        raise InvalidInput("--source jdbc reads a PostgreSQL registry; this one is "
                           f"{url.backend} (use the Parquet export: the default)")
    parts = urlsplit(url.conninfo)
    if not parts.hostname:
        raise InvalidInput("--source jdbc needs a PostgreSQL URL with a host name (a socket path has no JDBC form)")
    properties = {}
    if parts.username:
        properties["user"] = unquote(parts.username)
    if parts.password:
        properties["password"] = unquote(parts.password)
    params = []
    for name, value in parse_qsl(parts.query):
        if name == "options" and value.startswith("-csearch_path="):
            params.append(("currentSchema", value.split("=", 1)[1]))
        elif name in ("sslmode", "application_name", "connect_timeout"):
            params.append(({"application_name": "ApplicationName", "connect_timeout": "connectTimeout"}.get(name, name),
                           value))
    query = f"?{urlencode(params)}" if params else ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"jdbc:postgresql://{host}:{parts.port or 5432}{parts.path or '/'}{query}", properties


# -- reading and verifying ----------------------------------------------------------------------


def read_manifest(folder: Path) -> dict:
    """The manifest of an export folder; a folder that is not one is one line, not a traceback."""
    folder = Path(folder)
    if not folder.exists():
        raise NotFound(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder (an export is a folder with {MANIFEST})")
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidInput(f"{folder}: not a registry export (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a registry export's manifest ({excerpt(str(exc))})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{path}: not a registry export's manifest (no \"format\": \"{FORMAT}\")")
    if manifest.get("version") != VERSION:
        raise InvalidInput(f"{path}: export version {excerpt(str(manifest.get('version')))} is not one this "
                           f"version reads ({VERSION})")
    return manifest


def ledger_files(folder: Path) -> list[str]:
    """Every Parquet file under ledger/, relative to the folder, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in (Path(folder) / "ledger").rglob("*.parquet"))


def count_export_rows(folder: Path) -> int:
    """How many ledger rows the manifest lists (for a progress bar)."""
    manifest = read_manifest(folder)
    return sum(f.get("rows", 0) for f in manifest.get("files", []) if isinstance(f, dict)
               and str(f.get("path", "")).startswith("ledger/"))


class _Found:
    def __init__(self) -> None:
        self.problems: list[ExportProblem] = []

    def __call__(self, kind: str, entry: int | None, file: str | None, message: str) -> None:
        self.problems.append(ExportProblem(kind, entry, file, message))


def verify_export(folder: Path, progress: Callable[[int], None] | None = None) -> ExportVerifyReport:
    """Rebuild every exported entry's leaf from its body, check its typed columns against the
    body, and recompute the Merkle root of entries 0..size-1; compare with the manifest."""
    pa, pq = _pyarrow()
    folder = Path(folder)
    manifest = read_manifest(folder)
    found = _Found()
    checkpoint = manifest.get("checkpoint") if isinstance(manifest.get("checkpoint"), dict) else {}
    size, root = checkpoint.get("size"), checkpoint.get("root")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        found("manifest", None, MANIFEST, f"the manifest's checkpoint size is not a count: {excerpt(str(size))}")
        size = None
    if not (isinstance(root, str) and len(root) == 64 and all(c in "0123456789abcdef" for c in root)):
        found("manifest", None, MANIFEST, f"the manifest's root is not a SHA-256 in hex: {excerpt(str(root))}")
        root = None
    listed = {f["path"]: f for f in manifest.get("files", [])
              if isinstance(f, dict) and isinstance(f.get("path"), str) and f["path"].startswith("ledger/")}
    on_disk = ledger_files(folder)
    for name in sorted(set(listed) - set(on_disk)):
        found("deleted", None, name, f"{name}: listed in the manifest, missing from the export")
    for name in sorted(set(on_disk) - set(listed)):
        found("inserted", None, name, f"{name}: a ledger file the manifest does not list")
    leaves: dict[int, tuple[bytes, str]] = {}
    rows = 0
    for name in on_disk:
        rows += _verify_file(pa, pq, folder, name, listed.get(name), leaves, found, progress)
    computed = None
    if size is not None:
        missing = [seq for seq in range(size) if seq not in leaves]
        beyond = sorted(seq for seq in leaves if seq >= size)
        for seq in missing[:10]:
            found("deleted", seq, None, f"entry #{seq}: missing from the export (the checkpoint has {size} entries)")
        if len(missing) > 10:
            found("deleted", None, None, f"… and {len(missing) - 10} more entries missing")
        for seq in beyond[:10]:
            found("inserted", seq, leaves[seq][1], f"entry #{seq} ({leaves[seq][1]}): beyond the checkpoint's "
                                                   f"size {size}")
        if not missing:
            frontier = Frontier()
            for seq in range(size):
                frontier.append(leaves[seq][0])
            computed = frontier.root().hex()
            if root is not None and computed != root:
                found("checkpoint", None, MANIFEST, f"the Merkle root of the {size} exported entries is {computed}, "
                                                    f"the manifest says {root}")
    return ExportVerifyReport(not found.problems, str(folder), size if size is not None else 0, root, computed,
                              rows, len(on_disk), found.problems)


def _verify_file(pa, pq, folder: Path, name: str, listed: dict | None, leaves: dict, found: _Found,
                 progress) -> int:
    try:
        table = pq.read_table(folder / name)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        found("modified", None, name, f"{name}: not a readable Parquet file ({excerpt(str(exc))})")
        return 0
    missing = [c for c in _SHARED if c not in table.column_names]
    if missing:
        found("modified", None, name, f"{name}: has no column {', '.join(missing)}")
        return 0
    schema = table.schema
    actual = table.to_pylist()
    pairs: list[tuple[int, str]] = []
    for position, row in enumerate(actual):
        seq, body, leaf = row["seq"], row["body"], row["leaf_hash"]
        where = f"entry #{seq} ({name}, row {position})"
        if not isinstance(body, str) or not isinstance(seq, int):
            found("modified", seq if isinstance(seq, int) else None, name, f"{where}: no body or no seq")
            continue
        computed = leaf_hash(body.encode("utf-8"))
        if leaf != computed.hex():
            found("modified", seq, name, f"{where}: its body does not hash to its leaf hash")
        try:
            entry = Entry.from_body(json.loads(body))
        except (ValueError, KeyError, TypeError) as exc:
            found("modified", seq, name, f"{where}: its body is not a ledger entry ({excerpt(str(exc))})")
            continue
        if entry.seq != seq:
            found("modified", seq, name, f"{where}: its body says entry #{entry.seq}")
        expected = entry_columns(entry, body, leaf, row.get("actor"))
        for field in schema:
            want = _cell(expected.get(field.name), field.type, pa)
            if row[field.name] != want:
                found("modified", seq, name, f"{where}: column {field.name} says {excerpt(str(row[field.name]))}, "
                                             f"its body says {excerpt(str(want))}")
                break
        if seq in leaves:
            found("inserted", seq, name, f"{where}: entry #{seq} is also in {leaves[seq][1]}")
        else:
            leaves[seq] = (computed, name)
        pairs.append((seq, leaf))
        if progress is not None:
            progress(1)
    if listed is not None:
        if listed.get("rows") != len(actual):
            found("deleted" if len(actual) < (listed.get("rows") or 0) else "inserted", None, name,
                  f"{name}: holds {len(actual)} rows, the manifest says {excerpt(str(listed.get('rows')))}")
        elif listed.get("leaves_sha256") != _leaves_digest(pairs):
            found("modified", None, name, f"{name}: its entries' leaf hashes are not those the manifest lists")
    return len(actual)

