"""A live `socialcredit serve` process for the tests, and the principals they call it as.

`Server` starts the real command (`python -m socialcredit --db URL serve`) on a free port of
127.0.0.1, waits for /readyz, and stops it (its own process group, by id) afterwards.
`populate` makes a registry under the nosedive pack with one principal of each role and two
enrolled subjects.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from socialcredit.registry import Caller, Registry

OPERATOR = Caller("test:operator")
LACIE = "lacie"
NAOMI = "naomi"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCREDIT_")}
    env.update(extra)
    return env


class Server:
    def __init__(self, url: str, key_file: Path, log: Path, *, workers: int = 1, env: dict[str, str] | None = None,
                 log_level: str = "warning"):
        self.url = url
        self.log_level = log_level
        self.key_file = key_file
        self.log = log
        self.workers = workers
        self.env = env or {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> "Server":
        command = [sys.executable, "-m", "socialcredit", "--db", self.url, "--key-file", str(self.key_file), "serve",
                   "--port", str(self.port), "--workers", str(self.workers), "--log-level", self.log_level]
        stream = self.log.open("ab")
        self.process = subprocess.Popen(command, stdout=stream, stderr=stream, env=clean_env(**self.env),
                                        start_new_session=True)
        stream.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server was not ready in {timeout_s} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the group this test started: uvicorn and its workers
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Cast:
    """A registry's principals: name → API key, and the pseudonyms of the two subjects."""

    keys: dict[str, str] = field(default_factory=dict)
    pseudonyms: dict[str, str] = field(default_factory=dict)


def populate(registry: Registry) -> Cast:
    """One principal of each role (and a revoked one), two enrolled subjects."""
    cast = Cast()
    add = registry.principals.add
    cast.keys["admin"] = add("admin", "admin", caller=OPERATOR).api_key
    cast.keys["auditor"] = add("auditor", "auditor", caller=OPERATOR).api_key
    cast.keys["reviewer"] = add("reviewer", "reviewer", caller=OPERATOR).api_key
    cast.keys["provider"] = add("city", "provider", grants=["official.*"], caller=OPERATOR).api_key
    cast.keys["service"] = add("venue", "service", grants=["venue.*"], caller=OPERATOR).api_key
    cast.keys["other_service"] = add("landlord", "service", grants=["housing.*"], caller=OPERATOR).api_key
    cast.keys["subject"] = add("lacie", "subject", subject=LACIE, caller=OPERATOR).api_key
    cast.keys["other_subject"] = add("naomi", "subject", subject=NAOMI, caller=OPERATOR).api_key
    cast.keys["revoked"] = add("former-auditor", "auditor", caller=OPERATOR).api_key
    registry.principals.revoke("former-auditor", caller=OPERATOR)
    registry.enrol(LACIE)
    registry.enrol(NAOMI)
    cast.pseudonyms = {LACIE: registry.pseudonym(LACIE), NAOMI: registry.pseudonym(NAOMI)}
    return cast


def bearer(key: str | None) -> dict[str, str]:
    return {} if key is None else {"Authorization": f"Bearer {key}"}
