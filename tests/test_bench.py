"""The benchmark scripts run and print one JSON line (correctness only: speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "bench"


def _run(script: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True,
                          timeout=300, check=True)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


def test_ingest_bench_reports_every_shape_against_its_anchor():
    done = subprocess.run([sys.executable, str(BENCH / "bench_ingest.py"), "--quick"], capture_output=True,
                          text=True, timeout=300, check=True)
    results = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [r["shape"] for r in results] == ["cold-2", "cold-10", "cold-100", "appended"]
    for result in results:
        assert result["bench"] == "ingest"
        assert result["events"] > 0 and result["subjects"] > 0
        assert result["events"] == result["subjects"] * result["events_per_subject"]
        assert result["events_per_second"] > 0 and result["anchor_rows_per_second"] > 0
        assert result["indexed_anchor_rows_per_second"] > 0
        assert result["indexed_anchor_seconds"] == pytest.approx(result["events"] / result["indexed_anchor_rows_per_second"],
                                                                 rel=0.05, abs=0.002)
        assert result["peak_rss_mb"] > 0
        assert result["standings"] == result["subjects"]
        assert _ratio_of_the_rates(result)
    assert results[-1]["base_events"] > results[-1]["events"]


def _ratio_of_the_rates(report: dict) -> bool:
    """Is `ratio` the quotient of the two rates, given that each was rounded on its own?

    The bench divides the unrounded rates, then rounds the rates to whole events and the
    ratio to 4 places; dividing the rounded rates can land on the other side of a 4th-place
    boundary. So the true rates lie within half an event of the printed ones, and the ratio
    within half a unit of its 4th place of their quotient.
    """
    events, anchor, ratio = report["events_per_second"], report["anchor_rows_per_second"], report["ratio"]
    lowest, highest = (events - 0.5) / (anchor + 0.5), (events + 0.5) / (anchor - 0.5)
    return lowest - 0.00005 - 1e-12 <= ratio <= highest + 0.00005 + 1e-12


def test_the_ratio_check_allows_for_rounding_and_nothing_more():
    # Measured rates whose rounded quotient (0.1094) is not the rounded true ratio (0.1095).
    events, anchor = 62695.39563111638, 572820.9780273983
    report = {"events_per_second": round(events), "anchor_rows_per_second": round(anchor),
              "ratio": round(events / anchor, 4)}
    assert report["ratio"] != round(report["events_per_second"] / report["anchor_rows_per_second"], 4)
    assert _ratio_of_the_rates(report)
    assert not _ratio_of_the_rates({**report, "ratio": report["ratio"] + 0.0002})
    assert not _ratio_of_the_rates({**report, "ratio": report["ratio"] - 0.0002})


def test_check_bench_logs_every_decision_and_agrees_with_its_anchor():
    result = _run("bench_check.py")
    assert result["bench"] == "check"
    assert result["mismatches"] == 0
    assert result["all_logged"] is True and result["logged"] == result["expected_logged"]
    assert 0 < result["denied_share"] < 1
    # Batches, single calls and concurrent callers are measured and reported apart.
    assert result["batched"]["decisions_per_second"] > 0 and result["single"]["decisions_per_second"] > 0
    concurrent = result["concurrent"]
    assert 1 <= concurrent["commits"] <= concurrent["calls"]
    assert concurrent["decisions_per_commit"] == round(concurrent["calls"] / concurrent["commits"], 2)


def test_trust_bench_agrees_with_networkx():
    result = _run("bench_trust.py")
    assert result["bench"] == "trust"
    assert result["max_difference_on_sample"] < 1e-9
    assert result["iterations"] > 1 and result["networkx_sample_ratings"] > 0
def test_proofs_bench_verifies_every_proof_and_agrees_with_its_anchor():
    result = _run("bench_proofs.py")
    assert result["bench"] == "proofs"
    [size] = result["sizes"]
    assert size["leaves"] == 100_000 and size["proofs"] == 400
    assert size["failed_verifications"] == result["failed_verifications"] == 0
    assert size["anchor"]["calls"] == 5 and result["anchor_mismatches"] == 0
    assert 0 < size["inclusion"]["median_ms"] <= size["inclusion"]["p99_ms"]
    assert 0 < size["inclusion"]["cpu_median_ms"] <= size["inclusion"]["cpu_p99_ms"]
    assert result["goal_ms"] == 5
    assert result["meets_goal"] == (result["slowest_median_ms"] < 5)
    assert result["meets_goal_p99"] == (result["slowest_p99_ms"] < 5)


def test_http_bench_reports_decisions_and_events_against_their_anchors():
    import shutil

    import pytest

    if shutil.which("wrk") is None:
        pytest.skip("bench_http.py needs wrk (apt-get install -y wrk)")
    result = _run("bench_http.py")
    assert result["bench"] == "http"
    assert result["decisions"]["requests"] > 0 and result["bare"]["requests"] > 0
    assert result["server_errors"] == 0
    assert result["ratio"] == round(result["decisions_per_second"] / result["bare_per_second"], 4)
    assert result["events_per_second_http"] > 0 and result["events_per_second_cli"] > 0
    assert result["meets_goal_p99"] == (result["p99_ms"] <= result["goal_p99_ms"])
    assert result["cpu_us_per_decision"] > 0 and result["cpu_us_per_bare_request"] > 0
    assert result["cpu_ratio"] == round(result["cpu_us_per_bare_request"] / result["cpu_us_per_decision"], 4)
    assert 0 < result["commit_p50_ms"] <= result["commit_p99_ms"]


def test_spark_bench_reports_both_sides_and_equal_standings():
    result = _run("bench_spark.py")
    assert result["bench"] == "spark" and result["master"] == "local[2]"
    assert result["equal"] is True
    assert result["events"] > 0 and result["subjects"] > 0
    assert result["spark_events_per_core_second"] > 0 and result["in_process_events_per_core_second"] > 0
    assert result["inner_engine"] == result["in_process_engine"]


def test_batch_bench_equals_duckdb_and_the_fold_on_every_subject():
    result = _run("bench_batch.py")
    assert result["bench"] == "batch" and result["events"] == 10 * result["subjects"] > 0
    assert result["score_mismatches"] == 0 and result["tier_mismatches"] == 0
    assert result["standing_mismatches_in_sample"] == 0 and result["fold_sampled_subjects"] > 0
    assert result["fallback_subjects"] == 0  # Rongcheng is vectorized whole
    assert result["batch_seconds"] == min(result["batch_runs"]) and result["duckdb_seconds"] == min(result["duckdb_runs"])
