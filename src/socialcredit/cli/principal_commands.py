"""Principals of the HTTP service: add one (its key is printed once), list them, revoke one."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .app import JsonFlag, KindOption, caller, escape, handles_errors, kind_option, open_registry, out, print_json, say
from .grid import Grid

principal_app = typer.Typer(help="Add, list and revoke the principals who may call the HTTP API.",
                            no_args_is_help=True)


@principal_app.command("add")
@handles_errors
def principal_add(
    name: Annotated[str, typer.Argument(help="The principal's name (a provider's is the provider of its events).")],
    role: Annotated[str, typer.Option("--role", help="provider, service, subject, reviewer, auditor or admin.")],
    grant: Annotated[Optional[list[str]], typer.Option("--grant", help="For a provider: event types it may submit; for a service: services it may ask about (patterns such as finance.* or transport.rail.*; repeat).")] = None,
    subject: Annotated[Optional[str], typer.Option("--subject", help="For a subject key: the subject it is bound to (national ID, code or username).")] = None,
    kind: KindOption = "person",
    as_json: JsonFlag = False,
):
    """Add a principal and print its API key, once: only a hash of it is stored. Audited."""
    with open_registry() as registry:
        result = registry.principals.add(name, role, grants=grant or [], subject=subject, kind=kind_option(kind),
                                         caller=caller())
    if as_json:
        print_json(result)
        return
    grants = f" with grants {', '.join(result.principal.grants)}" if result.principal.grants else ""
    say(f"Principal {name} ({role}){grants} added. Its API key, shown this once (store it now):")
    out.print(result.api_key, markup=False, highlight=False)


@principal_app.command("list")
@handles_errors
def principal_list(as_json: JsonFlag = False):
    """Every principal: role, grants, key id, when created and revoked (never a key)."""
    with open_registry() as registry:
        result = registry.principals.list()
    if as_json:
        print_json(result)
        return
    if not result.principals:
        out.print("No principals yet: add one with `socialcredit principal add NAME --role ROLE`.")
        return
    table = Grid("Principals", "name", "role", "grants", "key id", "created", "revoked")
    for p in result.principals:
        table.row(p.name, p.role, ", ".join(p.grants) or "—", p.key_id, p.created_at[:19] + "Z",
                  (p.revoked_at[:19] + "Z") if p.revoked_at else "—")
    table.print("name", "role", "key id", "revoked")


@principal_app.command("revoke")
@handles_errors
def principal_revoke(
    name: Annotated[str, typer.Argument(help="The principal whose key stops working.")],
    as_json: JsonFlag = False,
):
    """Revoke a principal's key: within a second no worker accepts it. The principal stays on record. Audited."""
    with open_registry() as registry:
        result = registry.principals.revoke(name, caller=caller())
    if as_json:
        print_json(result)
    else:
        out.print(f"Revoked [bold]{escape(name)}[/] (key {result.key_id}).")
