"""Where a policy's file is, writing it out to start from, and what an opt-in must carry.

`policy show` names the file a policy comes from, `policy export` writes its text, and
`enrol` names the facts a policy's opt-in requires (Peeple's `peer.opt_in`), in its error
and in its `--help`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialcredit.policy.load import load_policy, pack_file, pack_names
from socialcredit.ratings.intake import OPT_IN

from test_bad_input import cli, error_line

PEEPLE_FACTS = ("--attribute", "age=30", "--attribute", "phone_verified=verified",
                "--attribute", "real_name=verified", "--attribute", "account_age_days=200")


def ok(*args: str):
    result = cli(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_policy_show_prints_where_a_packs_file_is_in_the_installed_package(tmp_path, monkeypatch):
    where = Path(str(pack_file("peeple")))
    assert where.is_absolute() and where.is_file() and where.name == "peeple.toml"
    assert where.read_text(encoding="utf-8") == load_policy("peeple").text
    monkeypatch.chdir(tmp_path)
    assert f"Source: {where}" in ok("policy", "show", "peeple").stdout.splitlines()
    assert json.loads(ok("policy", "show", "peeple", "--json").stdout)["source"] == str(where)
    # From a folder above the package (a checkout), the path is relative: shorter, still openable.
    monkeypatch.chdir(where.parents[2])
    assert "Source: policy/packs/peeple.toml" in ok("policy", "show", "peeple").stdout.splitlines()
    assert json.loads(ok("policy", "show", "peeple", "--json").stdout)["source"] == str(where)


def test_policy_show_of_a_file_names_the_file_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.toml").write_text(load_policy("sesame").text, encoding="utf-8")
    assert "Source: mine.toml" in ok("policy", "show", "mine.toml").stdout.splitlines()
    assert json.loads(ok("policy", "show", "mine.toml", "--json").stdout)["source"] == "mine.toml"


def test_policy_show_of_the_policy_in_force_names_its_ledger_entry(tmp_path):
    db = f"sqlite:///{tmp_path}/r.db"
    ok("--db", db, "init", "--policy", "nosedive")
    assert json.loads(ok("--db", db, "policy", "show", "--json").stdout)["source"] == "ledger entry #0"
    assert "Source: ledger entry #0" in ok("--db", db, "policy", "show").stdout.splitlines()


@pytest.mark.parametrize("name", pack_names())
def test_policy_export_writes_the_packs_text_unchanged_to_standard_output(name):
    assert ok("policy", "export", name).stdout == pack_file(name).read_text(encoding="utf-8")


def test_policy_export_out_writes_a_file_that_is_the_same_policy(tmp_path):
    target = tmp_path / "start.toml"
    result = ok("policy", "export", "rongcheng", "--out", str(target))
    assert result.stdout.strip() == f"Wrote rongcheng 2026.1 to {target}."
    copy, pack = load_policy(str(target)), load_policy("rongcheng")
    assert copy.digest == pack.digest  # the same text, byte for byte: comments kept
    assert "# Rongcheng points pilot" in target.read_text(encoding="utf-8")
    data = json.loads(ok("policy", "export", "sesame", "--out", str(tmp_path / "s.toml"), "--json").stdout)
    assert data == {"policy": load_policy("sesame").ref(), "source": str(pack_file("sesame")),
                    "out": str(tmp_path / "s.toml")}


def test_policy_export_refuses_to_overwrite_a_file_without_force(tmp_path):
    target = tmp_path / "mine.toml"
    target.write_text("# my own work\n", encoding="utf-8")
    line = error_line(cli("policy", "export", "sesame", "--out", str(target)))
    assert line == f"error: {target} already exists; add --force to overwrite it"
    assert cli("policy", "export", "sesame", "--out", str(target)).exit_code == 2
    assert target.read_text(encoding="utf-8") == "# my own work\n"
    ok("policy", "export", "sesame", "--out", str(target), "--force")
    assert target.read_text(encoding="utf-8") == load_policy("sesame").text


def test_policy_export_into_a_folder_or_a_missing_folder_is_a_one_line_error(tmp_path):
    for target, expected in ((tmp_path, f"{tmp_path} is a folder; give a file name"),
                             (tmp_path / "no" / "p.toml", f"{tmp_path / 'no' / 'p.toml'}: no such folder "
                                                          f"{tmp_path / 'no'}")):
        for force in ((), ("--force",)):
            result = cli("policy", "export", "peeple", "--out", str(target), *force)
            assert result.exit_code == 2
            assert error_line(result) == f"error: {expected}"


def test_policy_export_of_an_unknown_pack_is_a_one_line_error():
    result = cli("policy", "export", "no-such-pack")
    assert result.exit_code == 2
    assert "no such policy file or pack" in error_line(result)


def test_enrol_names_the_missing_opt_in_facts_and_how_to_give_them(tmp_path):
    db = f"sqlite:///{tmp_path}/r.db"
    ok("--db", db, "init", "--policy", "peeple")
    result = cli("--db", db, "enrol", "alice", "--at", "2026-05-01")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: the peeple policy's opt-in (peer.opt_in) requires age, phone_verified, real_name and "
        "account_age_days: give each as --attribute NAME=VALUE, e.g. --attribute age=21 --attribute "
        "phone_verified=verified --attribute real_name=verified --attribute account_age_days=183")
    one_short = cli("--db", db, "enrol", "alice", "--at", "2026-05-01", *PEEPLE_FACTS[:-2])
    assert error_line(one_short) == (
        "error: the peeple policy's opt-in (peer.opt_in) requires account_age_days: give it as "
        "--attribute NAME=VALUE, e.g. --attribute account_age_days=183")
    assert json.loads(ok("--db", db, "root", "--json").stdout)["size"] == 1  # nothing written
    assert ok("--db", db, "enrol", "alice", "--at", "2026-05-01", *PEEPLE_FACTS).stdout.startswith("Opted in")
    # Opting out asks for nothing, and a policy whose opt-in needs no facts takes none.
    assert ok("--db", db, "enrol", "alice", "--out", "--at", "2026-05-02").stdout.startswith("Opted out")
    other = f"sqlite:///{tmp_path}/n.db"
    ok("--db", other, "init", "--policy", "nosedive")
    assert ok("--db", other, "enrol", "alice", "--at", "2026-05-01").stdout.startswith("Opted in")


def test_enrol_help_names_the_opt_in_facts_of_every_pack_that_has_ratings():
    text = " ".join(ok("enrol", "--help").stdout.split())
    assert "--attribute NAME=VALUE" in text
    packs = [load_policy(name) for name in pack_names()]
    rated = [p for p in packs if OPT_IN in p.event_types]
    assert {p.id for p in rated} == {"nosedive", "peeple"}
    for policy in rated:
        assert policy.document.policy.title.split()[0] in text, policy.id
        for name, attribute in policy.event_types[OPT_IN].attributes.items():
            if attribute.required:
                assert name in text, (policy.id, name)
