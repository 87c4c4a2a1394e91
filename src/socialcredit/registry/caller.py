"""Who is asking, in what capacity, and why: passed with every call, recorded in the audit log.

One registry serves many callers at once (a server's threads, each request its own
principal); nothing about the caller is fixed when the registry is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("operator", "provider", "service", "subject", "reviewer", "auditor", "admin")


@dataclass(frozen=True, slots=True)
class Caller:
    principal: str  # a name: `cli:alice`, an API key's principal, `library`
    role: str = "operator"  # the local operator (CLI, library) may do everything
    purpose: str | None = None  # why this read or decision is made, in the caller's words

    def with_purpose(self, purpose: str | None) -> "Caller":
        return Caller(self.principal, self.role, purpose)


LIBRARY = Caller("library")
