"""Request bodies: the control objects of the API. Unknown fields are refused (extra="forbid").

A subject is always `{"subject": REF, "kind": "person" | "organization"}` in a body: raw
references never travel in a URL or a query string.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["person", "organization"]
When = Field(None, max_length=40, description="RFC 3339 time, or a date (00:00 UTC); default now.")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectQuery(Body):
    subject: str = Field(min_length=1, max_length=200, description="National ID, unified social credit code or "
                                                                   "username.")
    kind: Kind = "person"
    at: str | None = When


class StandingQuery(SubjectQuery):
    known_at: int | None = Field(None, ge=1, description="As the registry knew it at this ledger size.")


class DecisionRequest(SubjectQuery):
    service: str = Field(min_length=1, max_length=120, description="Dotted service name, e.g. "
                                                                   "transport.rail.high_speed.")


class RatingRequest(Body):
    subject: str = Field(min_length=1, max_length=200, description="Who is rated.")
    kind: Kind = "person"
    stars: int = Field(ge=-1000, le=1000, description="1 to 5 stars (the policy decides).")
    interaction: str | None = Field(None, max_length=200, description="The interaction rated.")
    category: str | None = Field(None, max_length=40)
    review: str | None = Field(None, max_length=5000)
    rater: str | None = Field(None, max_length=200, description="Optional: the rater's own reference, which must be "
                                                                "the key's subject (the rater is always the key's).")
    rater_kind: Kind = "person"
    at: str | None = When


class PrincipalRequest(Body):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["provider", "service", "subject", "reviewer", "auditor", "admin"]
    grants: list[str] = Field(default_factory=list, max_length=100)
    subject: str | None = Field(None, max_length=200, description="A subject key's subject (reference).")
    kind: Kind = "person"


class PolicyRequest(Body):
    text: str | None = Field(None, max_length=2_000_000, description="A policy's TOML text.")
    pack: str | None = Field(None, max_length=100, description="Or a pack's name (rongcheng, sesame, …).")
    force: bool = Field(False, description="Put it in force despite lint errors (needs reason).")
    reason: str | None = Field(None, max_length=2000)


class PolicySource(Body):
    text: str | None = Field(None, max_length=2_000_000)
    pack: str | None = Field(None, max_length=100)


EVENT_SCHEMA = {
    "type": "object",
    "description": "One event, as a line of `ingest` carries it; `provider` is the caller's own name (or absent).",
    "properties": {
        "subject": {"type": "string"},
        "subject_kind": {"type": "string", "enum": ["person", "organization"]},
        "type": {"type": "string"},
        "occurred_at": {"type": "string"},
        "provider": {"type": "string"},
        "key": {"type": "string"},
        "attributes": {"type": "object"},
    },
    "required": ["subject", "type", "occurred_at", "key"],
}
