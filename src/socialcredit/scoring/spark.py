"""The same scoring on Apache Spark: a population's standings computed by executors, from the
ledger as a Parquet export (registry/export.py), with the engine seam's semantics.

The job, `score_export`:

    read      ledger/**.parquet, only the shared columns subject, seq, body (events and voids:
              the rows with a subject; policy and key entries have none), or the same columns
              of PostgreSQL's `entries` over JDBC (`read_jdbc`, seq ranges read in parallel)
    group     repartition by subject (hash), sort each partition by (subject, seq): every
              subject's whole history is in one partition, in ledger order
    score     mapInArrow: each partition arrives as Arrow record batches; the runs of one subject
              become (subject, [Entry]) histories, handed to `Engine.compact_standings` of the
              per-partition engine (`inner`: "batch", the columnar engine, when it is registered
              in ENGINES, else "fold", the reference); out come Arrow batches of compact standings
    write     Parquet (subject, policy_digest, valid_from_us, valid_until_us, cacheable, score,
              tier, body), read back by the driver a batch at a time or left where it is

mapInArrow over subject-sorted partitions rather than groupBy().applyInArrow: a grouped UDF
calls Python once per subject with a table of a few rows, where a partition hands the inner
engine thousands of subjects at once, which is what a columnar engine needs (and the fold
does not mind). The grouping is the same: a subject never spans two partitions.

The policy travels to the executors pickled (a `Policy` pickles as its text) inside the
function's closure; the executors' Python is this process's interpreter (PYSPARK_PYTHON), so
they import this same package. Nothing here touches a database: the registry writes the
export, calls this, and stores what comes back (registry/standings.py).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import InvalidInput, Unavailable, excerpt
from ..ledger.entries import Entry
from ..policy.compiled import Policy
from .compact import CompactStanding
from .engine import ENGINES, History, engine_named
from .fold import Standing, fold

DEFAULT_MASTER = "local[2]"
POSTGRESQL_JAR = Path("/usr/share/java/postgresql.jar")  # Debian's libpostgresql-jdbc-java (.ci/run installs it)
SOURCES = ("export", "jdbc")
LEDGER_SCHEMA = "subject string, seq long, body string"
STANDINGS_SCHEMA = ("subject string, policy_digest string, valid_from_us long, valid_until_us long, "
                    "cacheable boolean, score double, tier string, body string")
_BATCH_ROWS = 4_096


def inner_engine(name: str | None = None) -> str:
    """The per-partition engine: `name`, else "batch" when it is registered, else "fold"."""
    if name is None:
        _load("batch")
        name = "batch" if "batch" in ENGINES else "fold"
    if name != "spark":
        _load(name)
    if name == "spark" or name not in ENGINES:
        raise InvalidInput(f"unknown inner engine {excerpt(name)} for Spark "
                           f"(engines: {', '.join(sorted(n for n in ENGINES if n != 'spark'))})")
    return name


def _load(name: str) -> None:
    """Import the module that registers an engine (the batch engine's), if there is one."""
    if name in ENGINES or not name.isidentifier():
        return
    try:
        __import__(f"{__package__}.{name}")
    except ImportError:
        pass


def spark_session(master: str = DEFAULT_MASTER, app_name: str = "socialcredit"):
    """(session, created): the active session if there is one, else a new one on `master`.

    Executors run this process's interpreter (the virtual environment's); the console shows
    Spark's errors only."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InvalidInput("the Spark engine needs PySpark: pip install 'socialcredit[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    log4j = Path(__file__).with_name("spark-log4j2.properties")
    # The driver's JVM starts before any builder option is read: its logging is set on its command line.
    jars = f"--jars {POSTGRESQL_JAR} " if POSTGRESQL_JAR.is_file() else ""  # JDBC reads of PostgreSQL
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS",
                          f"{jars}--driver-java-options -Dlog4j.configurationFile=file:{log4j} pyspark-shell")
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.shuffle.partitions", str(_default_partitions(master)))
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable))
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no Java, a master that is not there: py4j and Spark raise many kinds
        raise Unavailable(f"cannot start Spark on {excerpt(master)}: {excerpt(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session, True


def _default_partitions(master: str) -> int:
    if master.startswith("local[") and master[6:-1].isdigit():
        return 4 * int(master[6:-1])
    return 200


def _scorer(policy: Policy, at_us: int, inner: str):
    """The function each executor runs over its partitions' Arrow batches (policy pickled in)."""

    def score(batches):
        import pyarrow as pa

        _load(inner)
        engine = engine_named(inner)
        columns: dict[str, list] = {name: [] for name in ("subject", "policy_digest", "valid_from_us",
                                                          "valid_until_us", "cacheable", "score", "tier", "body")}
        for subject, standing in engine.compact_standings(policy, _histories(batches), at_us):
            columns["subject"].append(subject)
            columns["policy_digest"].append(standing.policy_digest)
            columns["valid_from_us"].append(standing.valid_from_us)
            columns["valid_until_us"].append(standing.valid_until_us)
            columns["cacheable"].append(standing.cacheable)
            columns["score"].append(float(standing.score))
            columns["tier"].append(standing.tier)
            columns["body"].append(standing.to_json())
            if len(columns["subject"]) >= _BATCH_ROWS:
                yield _batch(pa, columns)
        if columns["subject"]:
            yield _batch(pa, columns)

    return score


def _batch(pa, columns: dict[str, list]):
    types = {"valid_from_us": pa.int64(), "valid_until_us": pa.int64(), "cacheable": pa.bool_(),
             "score": pa.float64()}
    batch = pa.RecordBatch.from_arrays([pa.array(values, type=types.get(name, pa.string()))
                                        for name, values in columns.items()], names=list(columns))
    for values in columns.values():
        values.clear()
    return batch


def _histories(batches) -> Iterator[History]:
    """Runs of one subject in (subject, seq)-sorted batches, as whole histories."""
    current, entries = None, []
    for batch in batches:
        for subject, body in zip(batch.column("subject").to_pylist(), batch.column("body").to_pylist()):
            if subject != current:
                if current is not None:
                    yield current, entries
                current, entries = subject, []
            entries.append(Entry.from_body(json.loads(body)))
    if current is not None:
        yield current, entries


def score_frame(spark, policy: Policy, ledger, at_us: int, inner: str | None = None, partitions: int | None = None):
    """The Spark DataFrame of every subject's compact standing from a DataFrame of ledger rows
    (subject, seq, body), lazily."""
    inner = inner_engine(inner)
    rows = ledger.where("subject IS NOT NULL").select("subject", "seq", "body")
    rows = rows.repartition(partitions or int(spark.conf.get("spark.sql.shuffle.partitions")), "subject")
    rows = rows.sortWithinPartitions("subject", "seq")
    return rows.mapInArrow(_scorer(policy, at_us, inner), STANDINGS_SCHEMA)


def read_export(spark, folder: str | Path):
    """The ledger rows of a Parquet export as a DataFrame of the shared columns."""
    ledger = Path(folder) / "ledger"
    if not ledger.is_dir():
        raise InvalidInput(f"{folder}: not a registry export (no ledger folder)")
    return (spark.read.schema(LEDGER_SCHEMA).option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.parquet").parquet(str(ledger)))


def read_jdbc(spark, url: str, properties: dict[str, str], size: int, partitions: int = 2):
    """The ledger rows (subject, seq, body) below `size` straight from PostgreSQL over JDBC, read
    by `partitions` connections at once, each a range of seq."""
    query = f"(SELECT subject, seq, body FROM entries WHERE subject IS NOT NULL AND seq < {int(size)}) AS ledger"
    return spark.read.jdbc(url, query, column="seq", lowerBound=0, upperBound=max(int(size), 1),
                           numPartitions=partitions, properties={"driver": "org.postgresql.Driver", **properties})


def score_export(spark, policy: Policy, folder: str | Path, at_us: int, out: str | Path, *,
                 inner: str | None = None, partitions: int | None = None) -> None:
    """Score every subject of a Parquet export (registry/export.py) and write the compact
    standings as Parquet under `out` (a library call: the job `rebuild --engine spark` runs)."""
    score_frame(spark, policy, read_export(spark, folder), at_us, inner, partitions).write.mode("error").parquet(str(out))


def read_standings(out: str | Path) -> Iterator[tuple[str, CompactStanding]]:
    """(subject, compact standing) of every row Spark wrote under `out`, a batch at a time."""
    import pyarrow.parquet as pq

    for path in sorted(Path(out).glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(columns=["subject", "cacheable", "body"]):
            for subject, cacheable, body in zip(*(batch.column(i).to_pylist() for i in range(3))):
                yield subject, CompactStanding.from_json(body, cacheable)


class SparkEngine:
    """The engine seam on Spark: `compact_standings` ships the histories to executors; the
    registry's rebuild hands it a Parquet export instead (`compact_standings_of_export`)."""

    name = "spark"
    reads_export = True

    def __init__(self, master: str = DEFAULT_MASTER, inner: str | None = None, partitions: int | None = None,
                 source: str = "export"):
        if source not in SOURCES:
            raise InvalidInput(f"the Spark engine reads the ledger from {' or '.join(SOURCES)}, not {excerpt(source)}")
        self.master = master
        self.inner = inner
        self.partitions = partitions
        self.source = source  # where rebuild lets Spark read the ledger: a Parquet export, or PostgreSQL (JDBC)

    def standing(self, policy: Policy, entries: Sequence[Entry], at_us: int, known_at: int | None = None,
                 subject: str | None = None) -> Standing:
        return fold(policy, list(entries), at_us, known_at, subject)  # one subject: no cluster needed

    def compact_standings_of_export(self, policy: Policy, folder: str | Path,
                                    at_us: int) -> Iterator[tuple[str, CompactStanding]]:
        inner = inner_engine(self.inner)
        spark, created = spark_session(self.master)
        try:
            with tempfile.TemporaryDirectory(prefix="socialcredit-spark-") as scratch:
                out = Path(scratch) / "standings"
                score_export(spark, policy, folder, at_us, out, inner=inner, partitions=self.partitions)
                yield from read_standings(out)
        finally:
            if created:
                spark.stop()

    def compact_standings_of_database(self, policy: Policy, url: str, properties: dict[str, str], size: int,
                                      at_us: int) -> Iterator[tuple[str, CompactStanding]]:
        """The same job with the ledger read from PostgreSQL over JDBC (no export written)."""
        inner = inner_engine(self.inner)
        spark, created = spark_session(self.master)
        try:
            with tempfile.TemporaryDirectory(prefix="socialcredit-spark-") as scratch:
                out = Path(scratch) / "standings"
                frame = read_jdbc(spark, url, properties, size)
                try:
                    score_frame(spark, policy, frame, at_us, inner, self.partitions).write.parquet(str(out))
                except Exception as exc:  # the driver jar missing, the server refusing: py4j wraps them all
                    if "Py4J" not in type(exc).__name__ and "Analysis" not in type(exc).__name__:
                        raise
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise Unavailable(f"Spark could not read the ledger over JDBC: {excerpt(first)}") from None
                yield from read_standings(out)
        finally:
            if created:
                spark.stop()

    def compact_standings(self, policy: Policy, histories: Iterable[History],
                          at_us: int) -> Iterator[tuple[str, CompactStanding]]:
        import pyarrow as pa

        subjects, seqs, bodies = [], [], []
        for subject, entries in histories:
            for entry in entries:
                subjects.append(subject)
                seqs.append(entry.seq)
                bodies.append(entry.canonical())
        if not subjects:
            return
        table = pa.table({"subject": pa.array(subjects, pa.string()), "seq": pa.array(seqs, pa.int64()),
                          "body": pa.array(bodies, pa.string())})
        inner = inner_engine(self.inner)
        spark, created = spark_session(self.master)
        try:
            with tempfile.TemporaryDirectory(prefix="socialcredit-spark-") as scratch:
                out = Path(scratch) / "standings"
                frame = spark.createDataFrame(table.to_pandas())
                score_frame(spark, policy, frame, at_us, inner, self.partitions).write.parquet(str(out))
                yield from read_standings(out)
        finally:
            if created:
                spark.stop()


ENGINES.setdefault("spark", SparkEngine)


__all__ = ["SparkEngine", "read_export", "read_standings", "score_export", "score_frame", "spark_session"]
