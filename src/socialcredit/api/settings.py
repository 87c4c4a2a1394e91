"""The service's settings: from `socialcredit serve` flags, else `SOCIALCREDIT_*` variables.

`serve` passes its flags to the workers through the same variables, so an app made by the
factory in a worker process reads exactly what the command line said.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RATES = {  # requests per second per principal (per client address for no key)
    "provider": 50.0,
    "service": 5000.0,
    "subject": 20.0,
    "reviewer": 50.0,
    "auditor": 50.0,
    "admin": 20.0,
    "anonymous": 100.0,
}


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOCIALCREDIT_", extra="ignore")

    db: str = Field("sqlite:///socialcredit.db", description="The registry database URL (SOCIALCREDIT_DB).")
    key_file: Path | None = Field(None, description="The pseudonym key file (SOCIALCREDIT_KEY_FILE).")
    api_workers: int = Field(1, ge=1, description="How many worker processes serve (set by `serve --workers`): "
                                                  "with more than one, rate limits are shared through Redis.")
    api_max_body: int = Field(16 * 1024 * 1024, ge=1024, description="The largest request body in bytes "
                                                                     "(SOCIALCREDIT_API_MAX_BODY); larger is a 413.")
    api_max_batch: int = Field(100_000, ge=1, description="The most events in one POST /v1/events "
                                                          "(SOCIALCREDIT_API_MAX_BATCH).")
    api_rate_limits: dict[str, float] = Field(default_factory=dict, description=(
        "Requests per second per principal, by role, as JSON (SOCIALCREDIT_API_RATE_LIMITS, e.g. "
        "'{\"service\": 200}'); `anonymous` is per client address. A role not named keeps its default; 0 turns "
        "the limit off."))
    api_burst_seconds: float = Field(2.0, gt=0, description="A bucket holds this many seconds of requests "
                                                            "(SOCIALCREDIT_API_BURST_SECONDS).")
    api_rate_backend: str = Field("auto", pattern="^(auto|memory|redis)$", description=(
        "Where the buckets live (SOCIALCREDIT_API_RATE_BACKEND): memory (this process), redis (shared), or auto: "
        "redis with more than one worker, else memory."))
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="The Redis server for shared rate limits "
                                                                   "(SOCIALCREDIT_REDIS_URL).")

    def rates(self) -> dict[str, float]:
        return {**DEFAULT_RATES, **self.api_rate_limits}

    def shared_limits(self) -> bool:
        return self.api_rate_backend == "redis" or (self.api_rate_backend == "auto" and self.api_workers > 1)
