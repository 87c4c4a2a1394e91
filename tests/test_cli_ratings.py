"""Both ratings packs end to end through the command line."""

from __future__ import annotations

import json
import sqlite3

from test_cli import Registry

FACTS = ("-a", "age=30", "-a", "phone_verified=verified", "-a", "real_name=verified", "-a", "account_age_days=400")


def test_nosedive_from_the_command_line(tmp_path):
    cli = Registry(tmp_path)
    cli.init("nosedive")
    for person in ("lacie", "naomi", "chester"):
        cli.json("enrol", person, "--at", "2026-05-01T00:00:00Z")
    rated = cli.json("rate", "naomi", "lacie", "5", "--interaction", "coffee", "--at", "2026-05-02T09:00:00Z")
    assert rated["weight"] == 1.0 and "bucket at least 2.5 weighs 1" in rated["why_this_weight"]
    cli.json("rate", "chester", "lacie", "1", "--interaction", "queue", "--at", "2026-05-02T10:00:00Z")
    standing = cli.standing("lacie", "--at", "2026-05-03")
    assert standing["score"] == round((15 + 5 + 1) / 7, 3)
    assert [(r["stars"], r["weight"]) for r in standing["ratings"]] == [(5, 1.0), (1, 1.0)]
    assert standing["reasons"][0]["kind"] == "rating" and standing["reasons"][0]["stars"] == 1
    denied = cli.run("check", "lacie", "venue.entry", "--at", "2026-05-03", "--json")
    assert denied.exit_code == 3
    decision = json.loads(denied.stdout)
    assert decision["reasons"][0]["text"].startswith("A 1-star rating on 2026-05-02 (record #5), weight 1")
    replay = cli.json("replay", decision["decision_id"])
    assert replay["same"] is True
    size = cli.json("root")["size"]
    looked = cli.json("trust")  # looking writes nothing
    assert looked["recorded"] == 0 and cli.json("root")["size"] == size
    trust = cli.json("trust", "--record")
    assert trust["subjects"] == 3 and trust["ratings"] == 2 and trust["recorded"] == 3
    assert cli.json("root")["size"] == size + 3
    explained = cli.json("explain", "lacie", "--at", "2026-05-03")
    texts = [e["text"] for item in explained["entries"] for e in item["effects"]]
    assert any(t.startswith("★☆☆☆☆ 1 star, weight 1") for t in texts)


def test_rating_mistakes_are_one_line_errors(tmp_path):
    cli = Registry(tmp_path)
    cli.init("nosedive")
    cli.json("enrol", "ann")
    for args, message in [
        (("rate", "ann", "ann", "4"), "error: a subject cannot rate themself"),
        (("rate", "bob", "ann", "4"), "error: the rater has not opted in"),
        (("rate", "ann", "bob", "9"), "error: attribute 'stars' of peer.rating must be at most 5, got 9"),
    ]:
        result = cli.run(*args)
        assert result.exit_code == 2
        assert result.stderr.strip().startswith(message) and len(result.stderr.strip().splitlines()) == 1


def test_peeple_from_the_command_line(tmp_path):
    cli = Registry(tmp_path)
    cli.init("peeple")
    for person in ("julia", "nicole"):
        cli.json("enrol", person, *FACTS, "--at", "2026-05-01T00:00:00Z")
    refused = cli.run("rate", "julia", "stranger", "4", "--category", "personal")
    assert refused.exit_code == 2 and "has not consented to be rated" in refused.stderr
    wrong = cli.run("rate", "julia", "nicole", "4", "--category", "romance")
    assert wrong.exit_code == 2 and "must be one of dating, personal, professional" in wrong.stderr
    review = cli.json("rate", "julia", "nicole", "1", "--category", "professional", "--review", "late again",
                      "--at", "2026-05-02T09:00:00Z")
    cli.json("respond", "nicole", str(review["entry"]), "--dispute", "we never worked together",
             "--at", "2026-05-02T20:00:00Z")
    seen = cli.json("reviews", "nicole", "--at", "2026-05-02T21:00:00Z")
    assert [(r["stars"], r["status"], r["review"]) for r in seen["reviews"]] == [(1, "disputed", "late again")]
    assert seen["score"] == 3.0
    human = cli.run("reviews", "nicole", "--at", "2026-05-02T21:00:00Z")
    assert "DISPUTED" in human.stdout and "late again" in human.stdout


def _refused_as_future(cli, *args):
    size = cli.size()
    result = cli.run(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: occurred_at: 2030-01-01T00:00:00Z is in the future"), lines
    assert "Traceback" not in result.output
    assert cli.size() == size  # nothing written


def test_a_rating_or_an_enrolment_in_the_future_is_refused(tmp_path):
    cli = Registry(tmp_path)
    cli.init("nosedive")
    for person in ("lacie", "naomi"):
        cli.json("enrol", person, "--at", "2026-05-01T00:00:00Z")
    _refused_as_future(cli, "rate", "naomi", "lacie", "4", "--interaction", "coffee", "--at", "2030-01-01")
    _refused_as_future(cli, "enrol", "chester", "--at", "2030-01-01")
    _refused_as_future(cli, "enrol", "lacie", "--out", "--at", "2030-01-01")


def test_a_reply_or_a_dispute_in_the_future_is_refused(tmp_path):
    cli = Registry(tmp_path)
    cli.init("peeple")
    for person in ("julia", "nicole"):
        cli.json("enrol", person, *FACTS, "--at", "2026-05-01T00:00:00Z")
    review = cli.json("rate", "julia", "nicole", "1", "--category", "professional", "--at", "2026-05-02T09:00:00Z")
    _refused_as_future(cli, "respond", "nicole", str(review["entry"]), "--dispute", "never met", "--at", "2030-01-01")
    _refused_as_future(cli, "respond", "nicole", str(review["entry"]), "--reply", "sorry", "--at", "2030-01-01")


def test_a_raters_identity_number_is_stored_only_as_a_pseudonym(tmp_path):
    # `rater` is a reference attribute (type = "reference" in the pack): pseudonymized like a subject.
    rater, ratee = "11010519491231002X", "110105199001010299"
    cli = Registry(tmp_path)
    cli.init("nosedive")
    for person in (rater, ratee):
        cli.json("enrol", person, "--at", "2026-05-01T00:00:00Z")
    rated = cli.json("rate", rater, ratee, "4", "--interaction", "coffee", "--at", "2026-05-02T09:00:00Z")
    with sqlite3.connect(cli.db) as conn:
        body = json.loads(conn.execute("SELECT body FROM entries WHERE seq = ?", (rated["entry"],)).fetchone()[0])
    conn.close()
    assert body["attributes"]["rater"] == cli.standing(rater, "--at", "2026-05-03")["subject"]
    assert body["subject"] == cli.standing(ratee, "--at", "2026-05-03")["subject"]
    stored = b"".join(path.read_bytes() for path in sorted(tmp_path.glob("r.db*")))
    for number in (rater, ratee):
        assert number[:16].encode() not in stored


def test_trust_shows_the_names_the_caller_gives_instead_of_pseudonyms(tmp_path):
    cli = Registry(tmp_path)
    cli.init("nosedive")
    for person in ("lacie", "naomi", "chester"):
        cli.ok("enrol", person, "--at", "2026-05-01")
    cli.ok("rate", "naomi", "lacie", "5", "--at", "2026-05-02")
    cli.ok("rate", "chester", "lacie", "4", "--at", "2026-05-02")
    names = tmp_path / "names.txt"
    names.write_text("lacie\nnaomi\n", encoding="utf-8")
    shown = cli.ok("trust", "--names", str(names)).stdout
    assert "lacie" in shown and "naomi" in shown and "chester" not in shown  # chester: not named, a pseudonym
    assert "nothing recorded" in shown
    missing = cli.run("trust", "--names", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr
