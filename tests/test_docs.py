"""The documentation keeps up with the CLI: docs/cli.md is complete and fresh, README names the
environment variables the CLI reads."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from typer.main import get_command

from socialcredit.cli import app

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"
# Read by the CLI: the first two as option defaults, the key ones by ledger/identity.py.
def _variables_the_code_reads() -> set[str]:
    """Every SOCIALCREDIT_* name written as a string in the package: what it may read."""
    names = set()
    for path in (ROOT / "src" / "socialcredit").rglob("*.py"):
        names.update(re.findall(r"[\"'](SOCIALCREDIT_[A-Z_]+)[\"']", path.read_text(encoding="utf-8")))
    return names


ENV_VARS = _variables_the_code_reads()


def _generator():
    spec = importlib.util.spec_from_file_location("generate_cli_docs", ROOT / "docs" / "generate_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator():
    return _generator()


@pytest.fixture(scope="module")
def rendered(generator) -> str:
    return generator.render()


def walk(command, path=()):
    """Every command and group under `command` (sub-groups included), as the words that invoke it."""
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            yield from walk(sub, (*path, name))


def test_the_walk_finds_the_policy_sub_commands():
    paths = set(walk(get_command(app)))
    assert {("policy", "lint"), ("policy", "show"), ("policy", "activate"), ("policy", "list")} <= paths


@pytest.mark.parametrize("path", list(walk(get_command(app))), ids=lambda p: " ".join(p) or "socialcredit")
def test_every_command_is_documented_in_cli_md(path):
    text = CLI_MD.read_text(encoding="utf-8")
    title = " ".join(("socialcredit", *path))
    assert f"## `{title}`" in text, f"{title} is missing from docs/cli.md: run python docs/generate_cli_docs.py"
    usage = f"Usage: {title} "
    assert usage in text


def test_cli_md_is_up_to_date(rendered):
    assert CLI_MD.read_text(encoding="utf-8") == rendered, (
        "docs/cli.md is stale: run python docs/generate_cli_docs.py"
    )


def test_generating_twice_gives_the_same_text(generator, rendered):
    assert generator.render() == rendered


def test_cli_md_has_no_ansi_codes_or_trailing_spaces(rendered):
    assert "\x1b[" not in rendered
    assert all(line == line.rstrip() for line in rendered.splitlines())


def _option_envvars() -> set[str]:
    found: set[str] = set()

    def visit(command):
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                found.add(envvar)
            elif envvar:
                found.update(envvar)
        for sub in getattr(command, "commands", {}).values():
            visit(sub)

    visit(get_command(app))
    return found


@pytest.mark.xfail(not README.exists(), reason="README not written yet", strict=False)
def test_readme_mentions_every_environment_variable_the_cli_reads():
    text = README.read_text(encoding="utf-8")
    missing = sorted(name for name in ENV_VARS | _option_envvars() if name not in text)
    assert not missing, f"README.md does not mention {', '.join(missing)}"


def test_packs_doc_is_up_to_date():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "docs/generate_packs_doc.py", "--check"], cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, "docs/packs.md is stale: run python docs/generate_packs_doc.py"


def test_readme_lists_every_endpoint_of_the_service():
    from socialcredit.api import create_app

    text = README.read_text(encoding="utf-8")
    served = [f"`{method.upper()} {path}`" for path, item in create_app().openapi()["paths"].items()
              for method in item]
    missing = [endpoint for endpoint in served if endpoint not in text]
    assert not missing, f"README.md does not list {', '.join(missing)}"
    listed = set(re.findall(r"^\| `((?:GET|POST|DELETE|PUT|PATCH) /[^`]*)` \|", text, re.M))
    assert listed == {e.strip("`") for e in served}, "README.md lists an endpoint the service does not have"
