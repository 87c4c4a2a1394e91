"""socialcredit: an open, auditable social credit engine.

The public surface is small: open a `Registry`, load a policy, and read standings and
decisions from it. Everything else is implementation and may change.
"""

from .scoring.decide import Decision
from .intake.identity import IdentityError
from .store.database import StoreError
from .policy.compiled import Policy
from .policy.load import PolicyError, load_policy, pack_names, parse_policy
from .registry import IngestResult, Registry, RegistryError, VerifyReport

__version__ = "0.1.0"

__all__ = [
    "Decision",
    "IdentityError",
    "IngestResult",
    "Policy",
    "PolicyError",
    "Registry",
    "RegistryError",
    "StoreError",
    "VerifyReport",
    "load_policy",
    "pack_names",
    "parse_policy",
]
