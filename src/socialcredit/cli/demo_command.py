"""The demo: a synthetic town under a policy pack."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .app import JsonFlag, app, handles_errors, out, progress, settings


@app.command()
@handles_errors
def demo(
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed builds the same town.")] = 7,
    residents: Annotated[int, typer.Option("--residents", min=10, help="Number of residents.")] = 10_000,
    businesses: Annotated[int, typer.Option("--businesses", min=0, help="Number of businesses.")] = 300,
    policy: Annotated[str, typer.Option("--policy", help="The pack to run the town under.")] = "rongcheng",
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="End of the simulated year (default: today, 00:00 UTC).")] = None,
    as_json: JsonFlag = False,
):
    """Build a synthetic town, a year of its events, and show what the policy does to it."""
    from ..sim.demo import run_demo

    run_demo(settings.db, settings.key_file, seed=seed, residents=residents, businesses=businesses,
             policy=policy, as_json=as_json, console=out, progress=progress(not as_json), as_of=as_of)
