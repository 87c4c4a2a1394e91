"""Layers with arrows one way: each part of the package imports only the parts below it.

    errors, results, instants          know nothing above them
    policy, ledger                     the vocabulary and the log
    intake, store, scoring             the boundary, storage, the semantics
    ratings                            rating rules (on scoring; no database)
    registry                           ties storage, scoring and the ledger together
    sim, cli, api                      front doors and the demo, over the registry

Read from the source (every `import` and `from ... import`, lazy ones inside functions too).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "socialcredit"

ALLOWED = {
    "errors": set(),
    "results": set(),
    "instants": {"errors"},
    "policy": {"errors", "instants", "results", "policy"},
    "ledger": {"errors", "instants", "results", "ledger"},
    "intake": {"errors", "instants", "results", "ledger", "policy", "intake"},
    "store": {"errors", "ledger", "store"},
    "scoring": {"errors", "instants", "results", "ledger", "policy", "scoring"},
    "ratings": {"errors", "instants", "results", "ledger", "policy", "intake", "scoring", "ratings"},
    "registry": {"errors", "instants", "results", "ledger", "policy", "intake", "store", "scoring", "ratings",
                 "registry"},
    "sim": {"errors", "instants", "results", "ledger", "policy", "intake", "scoring", "registry", "sim"},
    "cli": {"errors", "instants", "results", "policy", "intake", "registry", "sim", "cli"},
    "api": {"errors", "instants", "results", "policy", "intake", "registry", "api"},
}
ENTRY = {"__init__", "__main__", "_entry"}  # the package's own doors may name anything


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(PACKAGE).parent.parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = list(package[: len(package) - (node.level - 1)])
                target = [*base, *(node.module.split(".") if node.module else [])]
                if not target:  # `from .. import x` at the top: x is the part
                    found.update(alias.name for alias in node.names)
                    continue
                names = ["socialcredit." + ".".join(target)]
                if not node.module:  # `from . import a, b`: each name is a module of this package
                    names = [f"socialcredit.{'.'.join(target)}.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "socialcredit" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_part_imports_only_the_parts_below_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        part = _part(path)
        if part in ENTRY:
            continue
        assert part in ALLOWED, f"{path}: part {part!r} has no place in the layers; add it to ALLOWED"
        for imported in _imported_parts(path) - ALLOWED[part]:
            wrong.append(f"{path.relative_to(PACKAGE)} imports {imported}")
    assert wrong == []


def test_storage_and_rating_rules_stay_apart():
    # Storage code does not know what a rule, a rating or a policy means; rating rules take no
    # connection.
    for path in (PACKAGE / "store").rglob("*.py"):
        if "migrations" not in path.parts:
            assert not {"scoring", "ratings", "policy", "registry"} & _imported_parts(path), path
    for path in (PACKAGE / "ratings").rglob("*.py"):
        assert "store" not in _imported_parts(path), path
