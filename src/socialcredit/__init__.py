"""socialcredit: an open, auditable social credit engine.

The public surface is small: open a `Registry`, pass a `Caller` with each call, and read
typed results (`socialcredit.results`) from it. Every error it raises on purpose is a
`SocialCreditError` of one `ErrorKind`. Everything else is implementation and may change.
"""

from .errors import (Conflict, ErrorKind, Forbidden, InvalidInput, NotFound, SocialCreditError, Tampered,
                     Unavailable)
from .intake.identity import IdentityError
from .policy.compiled import Policy
from .policy.load import PolicyError, load_policy, pack_names, parse_policy
from .registry import DEFAULT_URL, Caller, CheckRequest, Registry
from .results import Decision, IngestResult, VerifyReport
from .store import StoreError

__version__ = "0.1.0"

__all__ = [
    "Caller",
    "CheckRequest",
    "Conflict",
    "DEFAULT_URL",
    "Decision",
    "ErrorKind",
    "Forbidden",
    "IdentityError",
    "IngestResult",
    "InvalidInput",
    "NotFound",
    "Policy",
    "PolicyError",
    "Registry",
    "SocialCreditError",
    "StoreError",
    "Tampered",
    "Unavailable",
    "VerifyReport",
    "load_policy",
    "pack_names",
    "parse_policy",
]
