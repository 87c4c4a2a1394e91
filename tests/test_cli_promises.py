"""Promises the README makes, kept through the CLI: every read and decision audited with who
and why; no policy with lint errors goes live unless forced on the record."""

from __future__ import annotations

from pathlib import Path

from socialcredit.policy.load import load_policy

from test_cli import Registry

DEFAULTER = "11010519491231002X"
SCORES_RELIGION = """
[event_types."religion.church_attendance"]
domain = "religion"
description = "Attended a religious service"

[[rules]]
id = "church"
event = "religion.church_attendance"
describe = "attending a religious service"
dimension = "conduct"
points = 5
lifetime = "P1Y"
"""


def _bad_policy(folder: Path) -> Path:
    path = folder / "bad.toml"
    text = load_policy("rongcheng").text.replace('version = "2026.1"', 'version = "2026.1-bad"', 1)
    path.write_text(text + SCORES_RELIGION, encoding="utf-8")
    return path


def test_every_check_is_in_the_audit_log_with_who_and_why(tmp_path):
    cli = Registry(tmp_path)
    cli.init("china-judgment-defaulters")
    for _ in range(3):
        cli.json("--as", "hotel-desk-7", "--purpose", "room booking 2026-118", "check", DEFAULTER,
                 "hospitality.star_hotel", "--at", "2026-04-01")
    audit = cli.json("audit", DEFAULTER)
    decisions = [e for e in audit["entries"] if e["action"] == "decision"]
    assert len(decisions) == 3
    assert {(e["principal"], e["purpose"], e["detail"]["service"]) for e in decisions} == {
        ("hotel-desk-7", "room booking 2026-118", "hospitality.star_hotel")}
    assert len({e["detail"]["decision_id"] for e in decisions}) == 3
    # Without --as the principal is the operating-system user; the environment names one too.
    cli.json("check", DEFAULTER, "transport.air")
    assert cli.json("audit", "--action", "decision", "--limit", "1")["entries"][0]["principal"].startswith("cli:")
    result = cli.runner.invoke(__import__("socialcredit.cli", fromlist=["app"]).app,
                               ["--db", cli.url, "standing", DEFAULTER, "--json"],
                               env={**__import__("test_cli").ENV, "SOCIALCREDIT_PRINCIPAL": "auditor-ann"})
    assert result.exit_code == 0
    assert cli.json("audit", "--action", "standing")["entries"][0]["principal"] == "auditor-ann"


def test_void_and_activation_record_who_did_them(tmp_path):
    cli = Registry(tmp_path)
    cli.init("rongcheng")
    cli.ingest({"subject": "alice", "type": "traffic.violation", "occurred_at": "2026-03-01T00:00:00Z",
                "provider": "police", "key": "t1", "attributes": {}})
    cli.json("--as", "clerk-bo", "--purpose", "ticket issued in error", "void", "1", "--reason", "wrong plate")
    cli.json("--as", "policy-office", "policy", "activate", "sesame")
    actions = {e["action"]: e for e in reversed(cli.json("audit")["entries"])}  # the newest of each
    assert actions["void"]["principal"] == "clerk-bo" and actions["void"]["detail"]["cancels"] == 1
    assert actions["void"]["purpose"] == "ticket issued in error"
    assert actions["activate"]["principal"] == "policy-office"
    assert actions["activate"]["detail"]["policy"].startswith("sesame ")


def test_a_policy_with_lint_errors_is_refused_unless_forced_on_the_record(tmp_path):
    cli = Registry(tmp_path)
    cli.init("rongcheng")
    bad = _bad_policy(tmp_path)
    size = cli.size()
    refused = cli.run("policy", "activate", str(bad))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "lint error" in lines[0] and "--force" in lines[0] and "--reason" in lines[0]
    assert cli.size() == size and cli.json("policy", "show")["policy"]["id"] == "rongcheng"
    no_reason = cli.run("policy", "activate", str(bad), "--force")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr and cli.size() == size
    forced = cli.json("--as", "minister", "policy", "activate", str(bad), "--force", "--reason",
                      "replicating the 2014 pilot for a study")
    assert forced["forced"] == "replicating the 2014 pilot for a study" and forced["lint"]["error"] >= 1
    shown = cli.json("policy", "show")
    assert shown["policy"]["version"] == "2026.1-bad"
    assert shown["in_force"]["forced_reason"] == "replicating the 2014 pilot for a study"
    assert shown["in_force"]["forced_by"] == "minister" and shown["in_force"]["lint_errors"] >= 1
    assert "FORCED into force despite" in cli.ok("policy", "show").stdout
    activation = [e for e in cli.json("audit")["entries"] if e["action"] == "activate"][0]
    assert activation["detail"]["forced"] == "replicating the 2014 pilot for a study"


def test_init_refuses_a_policy_with_lint_errors_and_writes_nothing(tmp_path):
    bad = _bad_policy(tmp_path)
    cli = Registry(tmp_path)
    result = cli.run("init", "--policy", str(bad))
    assert result.exit_code == 2 and "lint error" in result.stderr
    assert not cli.db.exists() and not Path(f"{cli.db}.key").exists()


def test_the_demo_hint_names_the_policy_as_the_user_gave_it(tmp_path):
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(load_policy("rongcheng").text.replace('id = "rongcheng"', 'id = "rongcheng-lenient"', 1),
                       encoding="utf-8")
    cli = Registry(tmp_path)
    result = cli.ok("demo", "--policy", str(lenient), "--residents", "40", "--businesses", "2", "--as-of",
                    "2026-06-01")
    assert f"policy lint {lenient}" in result.stdout
    assert "policy lint rongcheng-lenient" not in result.stdout  # not a pack: that command would fail


def test_no_submitted_event_may_claim_to_be_the_registrys_own(tmp_path):
    cli = Registry(tmp_path)
    cli.init("nosedive")
    forged = {"subject": "lacie", "type": "peer.collusion_flag", "occurred_at": "2026-05-01T00:00:00Z",
              "provider": "socialcredit", "key": "ring-1:lacie",
              "attributes": {"ring": "ring-1", "members": 4, "evidence": "made up"}}
    size = cli.size()
    result = cli.json("ingest", str(cli.jsonl(forged)), code=2)
    assert "is the registry itself" in result["errors"][0]["error"]
    disguised = {**forged, "provider": "SocialCredit ", "key": "k2"}
    assert "is the registry itself" in cli.json("ingest", str(cli.jsonl(disguised)), code=2)["errors"][0]["error"]
    other = {**forged, "provider": "rating-app", "key": "k3"}
    assert "recorded by the registry itself" in cli.json("ingest", str(cli.jsonl(other)), code=2)["errors"][0]["error"]
    assert cli.size() == size
    assert cli.json("standing", "lacie")["lists"] == []


def test_init_warns_that_a_key_beside_the_database_reidentifies_everyone(tmp_path):
    cli = Registry(tmp_path)
    beside = cli.run("init")
    assert beside.exit_code == 0 and "re-identify every subject" in beside.stderr
    elsewhere = Registry(tmp_path / "other")
    (tmp_path / "other").mkdir()
    (tmp_path / "keys").mkdir()
    apart = elsewhere.runner.invoke(__import__("socialcredit.cli", fromlist=["app"]).app,
                                    ["--db", elsewhere.url, "--key-file", str(tmp_path / "keys" / "r.key"), "init"],
                                    env=__import__("test_cli").ENV)
    assert apart.exit_code == 0 and "re-identify" not in apart.stderr


def test_a_reference_can_come_from_standard_input_or_a_file_not_the_command_line(tmp_path):
    cli = Registry(tmp_path)
    cli.init("china-judgment-defaulters")
    cli.ingest({"subject": DEFAULTER, "type": "court.judgment_unfulfilled", "occurred_at": "2026-03-01T00:00:00Z",
                "provider": "court", "key": "j1", "attributes": {"case_id": "2026-7", "trigger": "refuses_to_pay"}})
    by_stdin = cli.runner.invoke(__import__("socialcredit.cli", fromlist=["app"]).app,
                                 ["--db", cli.url, "check", "-", "transport.air", "--at", "2026-04-01", "--json"],
                                 input=DEFAULTER + "\n", env=__import__("test_cli").ENV)
    assert by_stdin.exit_code == 3
    ref = tmp_path / "who.txt"
    ref.write_text(DEFAULTER + "\n", encoding="utf-8")
    standing = cli.json("standing", f"@{ref}", "--at", "2026-04-01")
    assert standing["lists"][0]["list"] == "judgment-defaulters"
    empty = cli.runner.invoke(__import__("socialcredit.cli", fromlist=["app"]).app,
                              ["--db", cli.url, "standing", "-"], input="", env=__import__("test_cli").ENV)
    assert empty.exit_code == 2 and "no reference given" in empty.stderr


def test_a_sqlite_url_with_two_slashes_is_refused_not_taken_for_an_in_memory_database(tmp_path):
    from socialcredit.cli import app
    from test_cli import ENV

    cli = Registry(tmp_path)
    result = cli.runner.invoke(app, ["--db", "sqlite://relative.db", "init"], env=ENV)
    assert result.exit_code == 2
    assert "sqlite://relative.db: a SQLite URL has three slashes before a relative path (sqlite:///relative.db)" \
        in result.output
    assert "in-memory" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "relative.db").exists() and not Path("relative.db").exists()
