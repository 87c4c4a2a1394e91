"""The Parquet export, through the CLI: what it writes (and that DuckDB, pandas and pyarrow read
it as it is), that `verify --export` passes on it, and that it names the entry or the file when
a row is edited, a row is dropped, or the manifest is edited."""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from socialcredit.cli import app
from socialcredit.instants import now_us
from socialcredit.ledger.merkle import leaf_hash
from socialcredit.registry import Registry
from socialcredit.sim.town import DAY_US, build_subjects, generate_events

from conftest import sqlite_from_template

ENV = {"COLUMNS": "200", "SOCIALCREDIT_DB": None, "SOCIALCREDIT_KEY_FILE": None}


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory):
    """A registry with a generated population, a void, and a few decisions."""
    folder = tmp_path_factory.mktemp("export")
    url = sqlite_from_template(folder / "registry.db")
    rng = random.Random(7)
    end = now_us() - DAY_US
    with Registry.init(url, "rongcheng", key_file=folder / "registry.key") as registry:
        subjects = build_subjects(rng, 80, 5)
        registry.ingest(generate_events(registry.policy, subjects, end - 365 * DAY_US, end, rng))
        registry.void(3, "entered in error")
        for subject in subjects[:4]:
            registry.check(subject.ref, "finance.loan", kind=subject.kind)
    return url, folder, [s.ref for s in subjects]


def _cli(url_folder, *args):
    url, folder, _refs = url_folder
    return CliRunner().invoke(app, ["--db", url, "--key-file", str(folder / "registry.key"), *args], env=ENV)


@pytest.fixture
def exported(registry_url, tmp_path):
    done = _cli(registry_url, "export", "--format", "parquet", "--out", str(tmp_path / "ex"), "--standings",
                "--decisions", "--json")
    assert done.exit_code == 0, done.output
    return tmp_path / "ex", json.loads(done.stdout)


def _verify(folder: Path):
    done = CliRunner().invoke(app, ["verify", "--export", str(folder), "--json"], env=ENV)
    return done.exit_code, json.loads(done.stdout) if done.stdout.startswith("{") else done.output


def test_round_trip_holds_the_ledger_as_typed_columns(registry_url, exported):
    folder, result = exported
    url, key_folder, refs = registry_url
    with Registry.open(url, key_file=key_folder / "registry.key") as registry:
        size = registry.size()
        stored = {row.seq: row for row in registry.store.ledger.iter_rows()}
        standings = registry.store.standings.count()
        decisions = registry.store.decisions.count()
        root = registry.root().root
    assert (result["size"], result["root"]) == (size, root)
    assert result["standings"] == standings and result["decisions"] == decisions == 4
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["checkpoint"] == {"size": size, "root": root}
    assert manifest["policy"]["id"] == "rongcheng"
    # every entry, once, with its body and leaf hash as stored
    ledger = duckdb.sql(f"SELECT seq, kind, body, leaf_hash FROM read_parquet('{folder}/ledger/**/*.parquet', "
                        "union_by_name = true) ORDER BY seq").fetchall()
    assert [row[0] for row in ledger] == list(range(size))
    for seq, kind, body, leaf in ledger:
        assert (kind, body, leaf) == (stored[seq].kind, stored[seq].body, stored[seq].leaf_hash.hex())
        assert leaf_hash(body.encode()) == stored[seq].leaf_hash
    # one event type is one table with its attributes as typed columns
    arrears = pd.read_parquet(folder / "ledger/events/finance.bank_arrears")
    assert str(arrears["attr_amount"].dtype) == "float64" and arrears["attr_cycle"].dtype == object
    assert arrears["attr_amount"].notna().any()
    for row in pq.read_table(folder / "ledger/events/finance.bank_arrears").to_pylist():
        body = json.loads(row["body"])
        assert (row["attr_amount"], row["attr_cycle"]) == (body["attributes"].get("amount"),
                                                           body["attributes"].get("cycle"))
        assert row["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S") == body["occurred_at"][:19]
        assert (row["subject"], row["seq"], row["type"]) == (body["subject"], body["seq"], "finance.bank_arrears")
    voids = pq.read_table(folder / "ledger/voids").to_pylist()
    assert [(v["target"], v["reason"]) for v in voids] == [(3, "entered in error")]
    assert pq.read_table(folder / "standings").num_rows == standings
    assert set(pq.read_table(folder / "decisions").column_names) >= {"id", "subject", "service", "allowed"}
    # pseudonyms only: no raw reference in any file
    blobs = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    texts = "".join(json.dumps(r) for r in duckdb.sql(
        f"SELECT subject FROM read_parquet('{folder}/ledger/**/*.parquet', union_by_name = true)").fetchall())
    assert not any(ref.encode() in blobs or ref in texts for ref in refs)


def test_verify_passes_on_an_export_as_written(exported):
    folder, result = exported
    code, report = _verify(folder)
    assert code == 0, report
    assert report["ok"] and report["problems"] == []
    assert report["computed_root"] == report["root"] == result["root"]
    assert report["entries"] == result["size"]


def _rewrite(path: Path, edit) -> None:
    table = pq.read_table(path)
    rows = edit(table.to_pylist())
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), path)


def test_verify_names_an_edited_typed_column(exported):
    folder, _ = exported
    path = folder / "ledger/events/finance.bank_arrears/part-00000.parquet"
    victim = pq.read_table(path).to_pylist()[0]

    def edit(rows):
        rows[0]["attr_amount"] = 1.0 if rows[0]["attr_amount"] != 1.0 else 2.0
        return rows

    _rewrite(path, edit)
    code, report = _verify(folder)
    assert code == 1 and not report["ok"]
    assert [(p["kind"], p["entry"], p["file"]) for p in report["problems"]] == \
        [("modified", victim["seq"], "ledger/events/finance.bank_arrears/part-00000.parquet")]
    assert "column attr_amount" in report["problems"][0]["message"]


def test_verify_names_an_edited_body_even_with_its_leaf_hash_recomputed(exported):
    folder, _ = exported
    path = folder / "ledger/events/finance.bank_arrears/part-00000.parquet"
    victim = pq.read_table(path).to_pylist()[1]

    def edit(rows):
        body = json.loads(rows[1]["body"])
        body["provider"] = "forged"
        rows[1]["provider"] = "forged"
        rows[1]["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        rows[1]["leaf_hash"] = leaf_hash(rows[1]["body"].encode()).hex()
        return rows

    _rewrite(path, edit)
    code, report = _verify(folder)
    assert code == 1
    kinds = {(p["kind"], p["file"]) for p in report["problems"]}
    assert ("modified", "ledger/events/finance.bank_arrears/part-00000.parquet") in kinds  # the file's leaves
    assert ("checkpoint", "manifest.json") in kinds  # and the root
    assert victim["seq"] >= 0


def test_verify_names_a_dropped_row(exported):
    folder, _ = exported
    path = folder / "ledger/events/traffic.violation/part-00000.parquet"
    dropped = pq.read_table(path).to_pylist()[2]["seq"]
    _rewrite(path, lambda rows: rows[:2] + rows[3:])
    code, report = _verify(folder)
    assert code == 1
    assert ("deleted", dropped, None) in {(p["kind"], p["entry"], p["file"]) for p in report["problems"]}
    assert report["computed_root"] is None


def test_verify_names_an_edited_manifest(exported):
    folder, result = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["checkpoint"]["root"] = "00" * 32
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, report = _verify(folder)
    assert code == 1
    assert [(p["kind"], p["file"]) for p in report["problems"]] == [("checkpoint", "manifest.json")]
    assert report["computed_root"] == result["root"]


def test_verify_names_a_file_the_manifest_does_not_list(exported):
    folder, _ = exported
    source = folder / "ledger/voids/part-00000.parquet"
    (folder / "ledger/voids/part-00001.parquet").write_bytes(source.read_bytes())
    code, report = _verify(folder)
    assert code == 1
    found = {(p["kind"], p["file"]) for p in report["problems"]}
    assert ("inserted", "ledger/voids/part-00001.parquet") in found


def test_text_output_says_ok(exported):
    folder, _ = exported
    done = CliRunner().invoke(app, ["verify", "--export", str(folder)], env=ENV)
    assert done.exit_code == 0 and done.stdout.startswith("OK: ")


@pytest.mark.parametrize("args, message", [
    (["verify", "--export", "/nonexistent/folder"], "no such folder"),
    (["verify", "--export", "{tmp}"], "not a registry export (no manifest.json)"),
    (["verify", "--export", "{tmp}/file"], "not a folder"),
    (["verify", "--export", "{tmp}", "--deep"], "takes neither --deep nor --against"),
])
def test_verify_export_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "file").write_text("x")
    done = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args], env=ENV)
    assert done.exit_code == 2
    assert message in done.output and len(done.output.strip().splitlines()) == 1, done.output


def test_a_manifest_that_is_not_ours_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    done = CliRunner().invoke(app, ["verify", "--export", str(tmp_path)], env=ENV)
    assert done.exit_code == 2 and "not a registry export's manifest" in done.output


def test_export_refuses_a_full_folder_and_other_formats(registry_url, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for args, message in [(["--out", str(tmp_path / "full")], "already exists and is not an empty folder"),
                          (["--out", str(tmp_path / "a" / "b")], "no such folder"),
                          (["--out", str(tmp_path / "c"), "--format", "csv"], "--format must be parquet")]:
        done = _cli(registry_url, "export", *args)
        assert done.exit_code == 2 and message in done.output, done.output
        assert len(done.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing half-written


def test_the_export_says_what_it_wrote_in_80_columns_with_the_root_whole(registry_url, tmp_path):
    url, folder, _refs = registry_url
    done = CliRunner().invoke(app, ["--db", url, "--key-file", str(folder / "registry.key"), "export", "--out",
                                    str(tmp_path / "ex")], env={**ENV, "COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    with Registry.open(url, key_file=folder / "registry.key") as registry:
        head = registry.root()
    assert max(len(line) for line in lines) <= 80, lines
    assert f"root {head.root}" in lines  # all 64 hex digits on one line, to copy
    assert f"at ledger size {head.size}," in " ".join(line.strip() for line in lines[:-1])
