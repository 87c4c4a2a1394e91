"""The Spark engine equals the fold: generated populations of every pack, scored on Spark
local[2] from a Parquet export, give the same compact standing for every subject, to the last
digit; `rebuild --engine spark` stores what the fold would.

One Spark session serves the whole module (a JVM start costs seconds); populations are small.
"""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from socialcredit.cli import app
from socialcredit.errors import InvalidInput
from socialcredit.instants import now_us
from socialcredit.policy.load import pack_names
from socialcredit.registry import Registry
from socialcredit.scoring.compact import compact
from socialcredit.scoring.engine import ENGINES, FoldEngine
from socialcredit.scoring.fold import fold
from socialcredit.scoring.spark import SparkEngine, inner_engine, read_standings, score_export, spark_session
from socialcredit.sim.town import DAY_US, build_subjects, generate_events

from conftest import sqlite_from_template

INNER = ["fold"] + (["batch"] if inner_engine() == "batch" else [])


@pytest.fixture(scope="module")
def spark():
    session, created = spark_session("local[2]", "socialcredit-tests")
    yield session
    if created:
        session.stop()


def _population(registry: Registry, seed: int, residents: int = 120, businesses: int = 4) -> None:
    rng = random.Random(seed)
    end = now_us() - DAY_US
    events = generate_events(registry.policy, build_subjects(rng, residents, businesses), end - 365 * DAY_US, end, rng)
    result = registry.ingest(events, skip_invalid=True)
    assert result.accepted > 0
    # a correction, so voids travel too
    first_event = next(e for e in registry.store.ledger.iter_rows() if e.kind == "event")
    registry.void(first_event.seq, "entered in error")


def _fold_standings(registry: Registry, at_us: int) -> dict:
    subjects = sorted(registry.store.ledger.subjects())
    histories = registry.histories(subjects)
    return dict(FoldEngine().compact_standings(registry.policy, ((s, histories[s]) for s in subjects), at_us))


@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("pack", pack_names())
def test_spark_scores_every_pack_as_the_fold_does(spark, tmp_path, pack, inner):
    registry = Registry.init(sqlite_from_template(tmp_path / "r.db"), pack, key_file=tmp_path / "r.key")
    try:
        _population(registry, seed=len(pack), residents=1500 if pack == "china-judgment-defaulters" else 120)
        registry.export(tmp_path / "export")
        at = now_us()
        score_export(spark, registry.policy, tmp_path / "export", at, tmp_path / "out", inner=inner, partitions=3)
        on_spark = dict(read_standings(tmp_path / "out"))
        expected = _fold_standings(registry, at)
    finally:
        registry.close()
    assert len(expected) >= 5
    assert on_spark.keys() == expected.keys()
    for subject, standing in expected.items():
        assert on_spark[subject] == standing, subject


def test_the_seam_call_ships_histories_to_spark(spark, tmp_path):
    """SparkEngine.compact_standings (histories in, standings out) equals the fold's."""
    registry = Registry.init(sqlite_from_template(tmp_path / "r.db"), "nosedive", key_file=tmp_path / "r.key")
    try:
        _population(registry, seed=3, residents=25, businesses=0)
        subjects = sorted(registry.store.ledger.subjects())
        histories = registry.histories(subjects)
        at = now_us()
        got = dict(SparkEngine().compact_standings(registry.policy, ((s, histories[s]) for s in subjects), at))
        assert got == _fold_standings(registry, at)
    finally:
        registry.close()


def test_rebuild_on_spark_stores_the_folds_standings(spark, database_url, tmp_path):
    """Through the CLI (`rebuild --engine spark --master local[2]`), on SQLite and PostgreSQL;
    on PostgreSQL with the ledger read over JDBC (`--source jdbc`) too."""
    url = database_url
    registry = Registry.init(url, "rongcheng", key_file=tmp_path / "registry.key")
    _population(registry, seed=11, residents=30)
    subjects = sorted(registry.store.ledger.subjects())
    registry.close()
    env = {"SOCIALCREDIT_KEY_FILE": str(tmp_path / "registry.key")}
    sources = [[]] + ([["--source", "jdbc"]] if url.startswith("postgresql") else [])
    for source in sources:
        _rebuild_on_spark(url, env, source, subjects, tmp_path)


def test_jdbc_is_for_postgresql(tmp_path):
    url = sqlite_from_template(tmp_path / "r.db")
    Registry.init(url, "rongcheng", key_file=tmp_path / "registry.key").close()
    done = CliRunner().invoke(app, ["--db", url, "--key-file", str(tmp_path / "registry.key"), "rebuild", "--engine",
                                    "spark", "--source", "jdbc"])
    assert done.exit_code == 2 and "--source jdbc reads a PostgreSQL registry" in done.output, done.output
    for args, message in [(["--source", "x", "--engine", "spark"], "--source must be export or jdbc"),
                          (["--source", "jdbc"], "--source is for --engine spark"),
                          (["--engine", "nope"], "unknown engine 'nope'")]:
        done = CliRunner().invoke(app, ["--db", url, "--key-file", str(tmp_path / "registry.key"), "rebuild", *args])
        assert done.exit_code == 2 and message in done.output, done.output


def _rebuild_on_spark(url, env, source, subjects, tmp_path):
    done = CliRunner().invoke(app, ["--db", url, "rebuild", "--engine", "spark", "--master", "local[2]", *source,
                                    "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"subjects": len(subjects), "engine": "spark", "folded_one_by_one": None,
                                       "fallback_reasons": {}}  # not gathered from the executors
    reopened = Registry.open(url, key_file=tmp_path / "registry.key")
    try:
        policy = reopened.policy
        for subject in subjects:
            stored = reopened.materialized(subject)
            entries = reopened.store.ledger.entries_for_subject(subject)
            at = stored.valid_from_us if stored.valid_from_us is not None else now_us()
            assert stored == compact(fold(policy, entries, at, None, subject)), subject
    finally:
        reopened.close()


def test_unknown_inner_engine_is_one_line(spark, tmp_path):
    with pytest.raises(InvalidInput, match="unknown inner engine 'nope'"):
        next(SparkEngine(inner="nope").compact_standings_of_export(None, tmp_path, 0))
    with pytest.raises(InvalidInput, match="unknown inner engine 'spark'"):
        inner_engine("spark")
    assert inner_engine("fold") == "fold" and "spark" in ENGINES
