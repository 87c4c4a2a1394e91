"""socialcredit: an open, auditable social credit engine.

The public surface is small: open a `Registry`, pass a `Caller` with each call, and read
typed results (`socialcredit.results`) from it. Every error it raises on purpose is a
`SocialCreditError` of one `ErrorKind`. Everything else is implementation and may change.

The names below are imported when first used, so that `import socialcredit` (and a single
command of the CLI) pays only for what it uses.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_WHERE = {
    "Caller": "socialcredit.registry",
    "CheckRequest": "socialcredit.registry",
    "DEFAULT_URL": "socialcredit.registry",
    "Registry": "socialcredit.registry",
    "Conflict": "socialcredit.errors",
    "ErrorKind": "socialcredit.errors",
    "Forbidden": "socialcredit.errors",
    "InvalidInput": "socialcredit.errors",
    "NotFound": "socialcredit.errors",
    "SocialCreditError": "socialcredit.errors",
    "Tampered": "socialcredit.errors",
    "Unavailable": "socialcredit.errors",
    "IdentityError": "socialcredit.intake.identity",
    "Policy": "socialcredit.policy.compiled",
    "PolicyError": "socialcredit.policy.load",
    "load_policy": "socialcredit.policy.load",
    "pack_names": "socialcredit.policy.load",
    "parse_policy": "socialcredit.policy.load",
    "Decision": "socialcredit.results",
    "IngestResult": "socialcredit.results",
    "StandingReport": "socialcredit.results",
    "VerifyReport": "socialcredit.results",
    "StoreError": "socialcredit.store",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'socialcredit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
