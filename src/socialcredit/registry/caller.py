"""Who is asking, in what capacity, and why: passed with every call, recorded in the audit log.

One registry serves many callers at once (a server's threads, each request its own
principal); nothing about the caller is fixed when the registry is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInput, excerpt
from ..intake.validation import refuse_unstorable_name, refuse_unstorable_text

MAX_PURPOSE = 1_000
ROLES = ("operator", "provider", "service", "subject", "reviewer", "auditor", "admin")


@dataclass(frozen=True, slots=True)
class Caller:
    principal: str  # a name: `cli:alice`, an API key's principal, `library`
    role: str = "operator"  # the local operator (CLI, library) may do everything
    purpose: str | None = None  # why this read or decision is made, in the caller's words

    def __post_init__(self) -> None:
        # Both go into the audit log as given, through every front door: a 300-character name,
        # a NUL or a bidirectional override would not fit, or would make the log lie.
        refuse_unstorable_name("principal", self.principal)
        if self.role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {excerpt(self.role)}")
        if self.purpose is not None:
            if len(self.purpose) > MAX_PURPOSE:
                raise InvalidInput(f"purpose must be at most {MAX_PURPOSE} characters, got {len(self.purpose):,}")
            refuse_unstorable_text("purpose", self.purpose)

    def with_purpose(self, purpose: str | None) -> "Caller":
        return Caller(self.principal, self.role, purpose)


LIBRARY = Caller("library")
