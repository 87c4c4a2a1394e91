"""Commands on the ledger itself: init, ingest, void, rebuild, and the tamper evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InvalidInput, NotFound, excerpt
from ..intake.readers import read_events, utf8_lines
from ..policy.load import pack_names
from ..registry import Registry, engine_named
from .app import (EXIT_CHECK_FAILED, EXIT_ERROR, ApiKeyOption, JsonFlag, LockWait, ServerOption, app, caller, err, escape, handles_errors,
                  open_registry, out, print_json, progress, settings, show)


@app.command()
@handles_errors
def init(
    policy: Annotated[str, typer.Option("--policy", help=f"A pack ({', '.join(pack_names())}) or a TOML file.")] = "rongcheng",
    force: Annotated[bool, typer.Option("--force", help="Put a policy with lint errors in force (needs --reason).")] = False,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why, on the record, when forcing.")] = None,
    as_json: JsonFlag = False,
):
    """Create a registry: database, pseudonym key (mode 0600) and the policy in force."""
    with Registry.init(settings.db, policy, key_file=settings.key_file, caller=caller(), force=force,
                       reason=reason) as registry:
        result = registry.created(settings.db, settings.key_file)
    if result.key_beside_database:
        err.print(f"warning: the pseudonym key {result.key_file} is beside the database: anyone with both can "
                  "re-identify every subject. Keep it elsewhere (--key-file, or SOCIALCREDIT_KEY) and out of "
                  "backups of the database.", highlight=False, soft_wrap=True, markup=False)
    show(result, as_json, f"Created registry [bold]{escape(settings.db)}[/] with policy "
                          f"[bold]{escape(result.policy.id)} {escape(result.policy.version)}[/].")


@app.command()
@handles_errors
def ingest(
    file: Annotated[str, typer.Argument(help="JSONL or CSV file of events, or - for standard input.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv (default: from the file name, else jsonl).")] = "",
    provider: Annotated[Optional[str], typer.Option("--provider", help="The provider for events that do not name one; events naming another are refused.")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Ingest the valid events and list the rest (default: one bad line refuses the file).")] = False,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
):
    """Append provider events to the ledger: all of them or, on any error, none."""
    fmt = fmt or ("csv" if file.lower().endswith(".csv") else "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput(f"--format must be jsonl or csv, got {excerpt(fmt)}")
    # JSON lines are read as bytes and decoded a line at a time, so that text that is not
    # UTF-8 is named by its line; CSV (whose quoted cells may hold line breaks) as text.
    # utf-8-sig: a file saved by a spreadsheet starts with a byte-order mark.
    binary = fmt == "jsonl"
    if file == "-":
        stream, total, label = sys.stdin.buffer if binary else sys.stdin, None, "<stdin>"
    else:
        path = Path(file)
        if path.is_dir():
            raise InvalidInput(f"{file}: is a folder; give an events file")
        if not path.is_file():
            raise NotFound(f"{file}: no such file")
        stream = path.open("rb") if binary else path.open("r", encoding="utf-8-sig", newline="")
        total, label = path.stat().st_size, file
    with open_registry(server, api_key) as registry, progress(not as_json) as bar:
        task = bar.add_task(f"Reading {label}", total=total)
        try:
            lines = utf8_lines(stream, label) if binary else stream
            events = read_events(_counting(lines, bar, task, by_bytes=total is not None), fmt)
            result = registry.ingest(events, provider=provider, skip_invalid=skip_invalid, on_wait=LockWait())
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        finally:
            if stream not in (sys.stdin, sys.stdin.buffer):
                stream.close()
    if as_json:
        print_json(result)
    else:
        for problem in result.errors[:50]:
            err.print(f"{label} line {problem.line}: {problem.error}", highlight=False, markup=False, soft_wrap=True)
        if len(result.errors) > 50:
            err.print(f"… and {len(result.errors) - 50} more", highlight=False)
        if not (result.accepted or result.duplicates or result.rejected):  # an empty file, or blank lines only
            out.print(f"Nothing to ingest: {escape(label)} holds no events; ledger size {result.ledger_size}.")
        else:
            verb = "Accepted" if result.written or not result.errors else "Nothing written:"
            out.print(f"{verb} {result.accepted} new, {result.duplicates} duplicate, {result.rejected} rejected; "
                      f"ledger size {result.ledger_size}.")
    if result.errors and not skip_invalid:
        raise typer.Exit(EXIT_ERROR)


_PROGRESS_LINES = 1_000  # lines read between two advances of the bar (an advance costs a lock and the clock)


def _counting(stream, bar, task, by_bytes: bool):
    if bar.disable:  # --json, or stderr not a terminal: nothing to count for
        yield from stream
        return
    read = lines = 0
    for line in stream:
        read += len(line.encode("utf-8")) if by_bytes else 1
        lines += 1
        if lines == _PROGRESS_LINES:
            bar.advance(task, read)
            read = lines = 0
        yield line
    bar.advance(task, read)


@app.command()
@handles_errors
def void(
    entry: Annotated[int, typer.Argument(help="The number of the event entry to cancel.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is cancelled (kept in the ledger).")],
    as_json: JsonFlag = False,
):
    """Cancel an event with a correction entry (the original stays, marked as cancelled)."""
    with open_registry() as registry:
        result = registry.void(entry, reason, caller=caller(), on_wait=LockWait())
    show(result, as_json, f"Entry #{entry} cancelled by entry #{result.void_entry}.")


@app.command()
@handles_errors
def rebuild(
    engine: Annotated[str, typer.Option("--engine", help="What computes the standings: fold (one subject at a time, the reference), batch (columnar, NumPy; equal to the fold) or spark (Apache Spark, from a Parquet export of the ledger).")] = "fold",
    master: Annotated[Optional[str], typer.Option("--master", help="With --engine spark: the Spark master URL (default local[2]).")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="With --engine spark: where Spark reads the ledger: export (a Parquet export, written for it; the default) or jdbc (PostgreSQL itself, over JDBC).")] = None,
    as_json: JsonFlag = False,
):
    """Rebuild every materialized standing from the ledger and the policy in force."""
    from ..registry import engine_named

    chosen = engine_named(engine)
    for option, value, name in (("--master", master, "master"), ("--source", source, "source")):
        if value is not None:
            if not hasattr(chosen, name):
                raise InvalidInput(f"{option} is for --engine spark, not {excerpt(engine)}")
            if name == "source" and value not in ("export", "jdbc"):
                raise InvalidInput(f"--source must be export or jdbc, got {excerpt(value)}")
            setattr(chosen, name, value)
    with open_registry() as registry, progress(not as_json) as bar:
        task = bar.add_task("Rebuilding standings", total=registry.count_subjects())
        result = registry.rebuild_standings(engine=chosen, progress=lambda n: bar.advance(task, n),
                                            on_wait=LockWait())
    show(result, as_json, f"Rebuilt {result.subjects} standings with the {result.engine} engine.")


# -- tamper evidence ---------------------------------------------------------------------------


@app.command()
@handles_errors
def verify(
    deep: Annotated[bool, typer.Option("--deep", help="Also recompute every materialized standing from the ledger and compare.")] = False,
    against: Annotated[Optional[str], typer.Option("--against", metavar="FILE_OR_ROOT", help="A tree head published earlier (a file from `root --publish`, or SIZE:ROOT): prove the ledger still extends it.")] = None,
    export_dir: Annotated[Optional[Path], typer.Option("--export", metavar="DIR", help="Verify a Parquet export (from `export`) instead of the registry: rebuild every entry's leaf from its body, check its typed columns, recompute the Merkle root and compare it with the manifest's.")] = None,
    as_json: JsonFlag = False,
):
    """Recompute the Merkle tree, the key anchor and the decision and audit logs' hash chains; exit 1 if anything was altered."""
    if export_dir is not None:
        if deep or against is not None:
            raise InvalidInput("--export verifies an export folder alone: it takes neither --deep nor --against")
        _verify_export(export_dir, as_json)
        return
    published = _published_text(against) if against is not None else None
    with open_registry() as registry, progress(not as_json) as bar:
        task = bar.add_task("Verifying", total=registry.count_to_verify(deep=deep))
        report = registry.verify(progress=lambda n: bar.advance(task, n), deep=deep, against=published)
    if as_json:
        print_json(report)
    elif report.ok:
        extra = "" if report.standings is None else f", {report.standings} standings recomputed"
        extends = "" if report.against is None else f"; extends the published tree head of size {report.against}"
        out.print(f"[green]OK[/]: {report.entries} entries, {report.checkpoints} checkpoints, {report.decisions} "
                  f"decisions, {report.audit} audit records{extra}, size {report.size}, root {report.root}{extends}")
    else:
        out.print(f"[red]NOT OK[/]: {len(report.problems)} problem(s) in {report.entries} entries, "
                  f"{report.decisions} decisions and {report.audit} audit records")
        for problem in report.problems:
            out.print(f"  {escape(problem.message)}", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _verify_export(folder: Path, as_json: bool) -> None:
    from ..registry.export import count_export_rows, verify_export

    total = count_export_rows(folder)
    with progress(not as_json) as bar:
        task = bar.add_task("Verifying the export", total=total)
        report = verify_export(folder, progress=lambda n: bar.advance(task, n))
    if as_json:
        print_json(report)
    elif report.ok:
        out.print(f"[green]OK[/]: {report.entries} entries in {report.files} files, size {report.size}, "
                  f"root {report.root} (recomputed)", highlight=False)
    else:
        out.print(f"[red]NOT OK[/]: {len(report.problems)} problem(s) in the export {escape(str(folder))} "
                  f"({report.entries} entries in {report.files} files)", highlight=False)
        for problem in report.problems:
            out.print(f"  {escape(problem.message)}", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
@handles_errors
def export(
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="A new (or empty) folder to write the export to.")],
    fmt: Annotated[str, typer.Option("--format", help="The file format: parquet.")] = "parquet",
    standings: Annotated[bool, typer.Option("--standings", help="Also export the materialized standings.")] = False,
    decisions: Annotated[bool, typer.Option("--decisions", help="Also export the decision log (without the callers' principals and purposes).")] = False,
    as_json: JsonFlag = False,
):
    """Export the ledger (pseudonyms only, attributes as typed columns per event type) as Parquet, with a manifest of its checkpoint; `verify --export` checks it."""
    if fmt != "parquet":
        raise InvalidInput(f"--format must be parquet, got {excerpt(fmt)}")
    with open_registry() as registry, progress(not as_json) as bar:
        task = bar.add_task(f"Exporting to {out_dir}", total=registry.count_to_export(standings=standings,
                                                                                      decisions=decisions))
        result = registry.export(out_dir, standings=standings, decisions=decisions,
                                 progress=lambda n: bar.advance(task, n), caller=caller())
    extra = "".join(f", {n} {what}" for n, what in ((result.standings, "standings"), (result.decisions, "decisions"))
                    if n is not None)
    # The root on a line of its own: 64 hex digits do not fit beside the rest in 80 columns.
    show(result, as_json, f"Exported {result.size} entries{extra} in {result.files} files to {escape(result.folder)} "
                          f"at ledger size {result.size},\nroot {result.root}")


def _published_text(against: str) -> str:
    """The text of a published tree head: the file's if `against` names one, else `against` (SIZE:ROOT)."""
    path = Path(against)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{against}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if ":" not in against:
        raise NotFound(f"{against}: no such file (--against takes a file from `root --publish`, or SIZE:ROOT)")
    return against


@app.command()
@handles_errors
def root(
    file: Annotated[Optional[Path], typer.Argument(help="With --publish: where to write the tree head (default: standard output).")] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Write a tree head to publish: size, root, time and the logs' heads, as JSON.")] = False,
    as_json: JsonFlag = False,
):
    """The ledger's size and Merkle root; with --publish, a tree head to publish (`verify --against` checks it later)."""
    if file is not None and not publish:
        raise InvalidInput(f"{file}: a file is written only with --publish")
    with open_registry() as registry:
        result = registry.publish(caller=caller()) if publish else registry.root()
    if not publish:
        show(result, as_json, f"size {result.size} root {result.root}")
    elif file is None:
        print_json(result)
    else:
        try:
            file.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"{file}: cannot write it ({exc.strerror or exc})") from None
        show(result, as_json, f"Wrote the tree head of size {result.size} to {escape(str(file))}: publish it where "
                              "it cannot be changed later; `socialcredit verify --against` checks the registry "
                              "still extends it.")


@app.command()
@handles_errors
def prove(
    entry: Annotated[int, typer.Argument(help="Entry number.")],
    size: Annotated[Optional[int], typer.Option("--size", help="Tree size to prove against (default: current).")] = None,
    as_json: JsonFlag = False,
):
    """An RFC 9162 inclusion proof that the entry is in the ledger."""
    with open_registry() as registry:
        result = registry.inclusion_proof(entry, size)
    _print_proof(result, as_json, f"entry #{entry} (leaf hash {result.leaf_hash}) is in the tree of size "
                                  f"{result.size} with root {result.root}; audit path:")


@app.command()
@handles_errors
def consistency(
    old_size: Annotated[int, typer.Argument(help="The earlier tree size.")],
    size: Annotated[Optional[int], typer.Option("--size", help="The later tree size (default: current).")] = None,
    as_json: JsonFlag = False,
):
    """An RFC 9162 consistency proof: the later tree extends the earlier one, nothing rewritten."""
    with open_registry() as registry:
        result = registry.consistency_proof(old_size, size)
    _print_proof(result, as_json, f"{result.old_size} → {result.new_size}: {result.old_root} → {result.new_root}")


def _print_proof(result, as_json: bool, headline: str) -> None:
    if as_json:
        print_json(result)
        return
    out.print(headline)
    for node in result.proof:
        out.print(f"  {node}")
