"""The service over HTTP: decisions per second and their latency, and events per second.

Needs `wrk` (Debian's package): `apt-get install -y wrk`. Without it the script stops at
once and says so.

**Decisions.** A SQLite registry under `rongcheng` with `--subjects` residents (10,000;
`--quick`: 500), each with one event, and a service key granted every service. Two servers
with the same uvicorn settings (`--workers`, default 1; no access log), started one after the
other on this machine:

- the project: `socialcredit serve`, and wrk's requests are `POST /v1/decisions` for a random
  resident and `transport.rail.high_speed` (each decision committed to the log before it is
  answered, audited, rate limits off);
- the anchor: a bare FastAPI app (`bench/_bare_app.py`) whose one `POST` endpoint answers a
  constant JSON body of the same size as a decision's answer.

wrk runs `--connections` (50) connections on one thread for `--seconds` (10; `--quick` 2) each,
after a warm-up; its Lua `done` hook reports requests, errors and latency percentiles.

**Events.** `--events` (100,000; `--quick` 10,000) town events in one JSONL file; into a fresh
registry over HTTP in batches of 10,000 (`POST /v1/events`, one after another, as a provider),
and into another fresh registry by `socialcredit ingest FILE` (the whole command, as a new
process). Both timed from the first byte sent (or the command's start) to the last answer.

Prints one JSON line (keys in bench/README.md); notes go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, note

HERE = Path(__file__).resolve().parent
GOAL_RATIO = 0.6
GOAL_P99_MS = 10.0
GOAL_EVENTS_RATIO = 0.7
BATCH = 10_000
SERVICE = "transport.rail.high_speed"
NO_LIMITS = json.dumps({r: 0 for r in ("provider", "service", "subject", "reviewer", "auditor", "admin",
                                       "anonymous")})

WRK_SCRIPT = r"""
local subjects = tonumber(os.getenv("BENCH_SUBJECTS"))
local token = os.getenv("BENCH_TOKEN")
local bare = os.getenv("BENCH_BARE") == "1"
math.randomseed(7)
request = function()
  local body = '{"subject": "resident' .. math.random(0, subjects - 1) .. '", "service": "{SERVICE}"}'
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  return wrk.format("POST", bare and "/bare" or "/v1/decisions", headers, body)
end
local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %.3f, "errors": %d, "non2xx": %d, ' ..
    '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
""".replace("{SERVICE}", SERVICE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCREDIT_")}
    return {**base, "SOCIALCREDIT_API_RATE_LIMITS": NO_LIMITS, **extra}


class Server:
    def __init__(self, command: list[str], environment: dict[str, str], port: int, log: Path):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        with log.open("ab") as stream:
            self.process = subprocess.Popen(command, env=environment, stdout=stream, stderr=stream,
                                            start_new_session=True)
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"a server did not start: {log.read_text()[-1000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and every process under it (uvicorn's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def commit_latency(folder: Path, commits: int = 200) -> dict:
    """What one durable SQLite commit (WAL, synchronous=FULL, as the registry writes) takes on this
    disk: a floor under any decision's latency, since each is committed before it is answered."""
    import sqlite3

    connection = sqlite3.connect(folder / "fsync.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE t (x)")
    took = []
    for n in range(commits):
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (?)", (n,))
        connection.execute("COMMIT")
        took.append((time.perf_counter() - started) * 1000)
    connection.close()
    took.sort()
    return {"p50_ms": round(took[len(took) // 2], 3), "p99_ms": round(took[int(len(took) * 0.99)], 3)}


def wrk(base: str, connections: int, seconds: int, script: Path, environment: dict[str, str],
        server: "Server | None" = None) -> dict:
    cpu_before = tree_cpu_seconds(server.process.pid) if server is not None else None
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
                          capture_output=True, text=True, env=environment, timeout=seconds + 120)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr[-500:]}")
    line = [text for text in done.stdout.splitlines() if text.startswith('{"requests"')][-1]
    result = json.loads(line)
    result["per_second"] = round(result["requests"] / result["seconds"], 1)
    if server is not None:
        cpu = tree_cpu_seconds(server.process.pid) - cpu_before
        result["server_cpu_s"] = round(cpu, 3)
        result["cpu_us_per_request"] = round(cpu / max(1, result["requests"]) * 1e6, 1)
    return result


def build(url: str, key_file: Path, subjects: int) -> tuple[str, str]:
    from socialcredit.instants import format_instant, now_us
    from socialcredit.registry import Caller, Registry

    day = 86_400_000_000
    start = now_us() - 300 * day
    with Registry.init(url, "rongcheng", key_file=key_file) as registry:
        for first in range(0, subjects, 50_000):
            registry.ingest([{"subject": f"resident{i}", "type": "traffic.violation",
                              "occurred_at": format_instant(start + (i % 250) * day), "provider": "police",
                              "key": f"t{i}", "attributes": {}} for i in range(first, min(first + 50_000, subjects))])
        operator = Caller("bench")
        service = registry.principals.add("gate", "service", grants=["*"], caller=operator).api_key
        provider = registry.principals.add("town", "provider", grants=["*"], caller=operator).api_key
    return service, provider


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs (for tests)")
    parser.add_argument("--subjects", type=int, help="residents in the decisions registry (default 10,000)")
    parser.add_argument("--events", type=int, help="events for the ingest comparison (default 100,000)")
    parser.add_argument("--seconds", type=int, help="each wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of both servers (default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the temporary databases go")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench_http.py needs the load generator wrk: install it with `apt-get install -y wrk` "
                         "(Debian's package), then run this again")
    subjects = args.subjects or (500 if args.quick else 10_000)
    events_n = args.events or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (2 if args.quick else 10)
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="socialcredit-bench-http-", dir=args.tmpdir) as folder:
        folder = Path(folder)
        url, key_file = f"sqlite:///{folder}/decisions.db", folder / "decisions.key"
        note(f"building a registry of {subjects:,} residents")
        service_key, _ = build(url, key_file, subjects)
        script = folder / "decisions.lua"
        script.write_text(WRK_SCRIPT)
        wrk_env = {**os.environ, "BENCH_SUBJECTS": str(subjects), "BENCH_TOKEN": service_key}

        port = free_port()
        project = Server([python, "-m", "socialcredit", "--db", url, "--key-file", str(key_file), "serve",
                          "--port", str(port), "--workers", str(args.workers), "--log-level", "warning"],
                         env(), port, folder / "project.log")
        try:
            import httpx

            sample = httpx.post(project.base + "/v1/decisions", json={"subject": "resident1", "service": SERVICE},
                                headers={"Authorization": f"Bearer {service_key}"}, timeout=30)
            assert sample.status_code == 201, sample.text
            note("warming up the project's server")
            wrk(project.base, args.connections, 1 if args.quick else 2, script, wrk_env)
            note(f"wrk: {args.connections} connections for {seconds} s against POST /v1/decisions")
            decisions = wrk(project.base, args.connections, seconds, script, wrk_env, project)
        finally:
            project.stop()
        body_size = len(sample.content)
        port = free_port()
        bare = Server([python, str(HERE / "_bare_app.py"), str(port), str(args.workers), str(body_size)],
                      env(), port, folder / "bare.log")
        try:
            bare_env = {**wrk_env, "BENCH_BARE": "1"}
            wrk(bare.base, args.connections, 1 if args.quick else 2, script, bare_env)
            note(f"wrk: the same against the bare endpoint ({body_size} bytes)")
            anchor = wrk(bare.base, args.connections, seconds, script, bare_env, bare)
        finally:
            bare.stop()

        commit = commit_latency(folder)
        events = _events(folder, events_n, args.seed)
        http_seconds = _ingest_over_http(folder, events, python)
        cli_seconds = _ingest_by_cli(folder, events, python)

    events_http = events_n / http_seconds
    events_cli = events_n / cli_seconds
    ratio = decisions["per_second"] / anchor["per_second"]
    report = {
        "bench": "http",
        "workers": args.workers,
        "connections": args.connections,
        "seconds": seconds,
        "subjects": subjects,
        "decisions": {**decisions, "body_bytes": body_size},
        "bare": anchor,
        "decisions_per_second": decisions["per_second"],
        "bare_per_second": anchor["per_second"],
        "ratio": round(ratio, 4),
        "p50_ms": decisions["p50_ms"],
        "p99_ms": decisions["p99_ms"],
        "cpu_us_per_decision": decisions["cpu_us_per_request"],
        "cpu_us_per_bare_request": anchor["cpu_us_per_request"],
        "cpu_ratio": round(anchor["cpu_us_per_request"] / decisions["cpu_us_per_request"], 4)
        if decisions["cpu_us_per_request"] else None,
        "commit_p50_ms": commit["p50_ms"],
        "commit_p99_ms": commit["p99_ms"],
        "server_errors": decisions["non2xx"] + decisions["errors"],
        "events": events_n,
        "batch": BATCH,
        "events_per_second_http": round(events_http),
        "events_per_second_cli": round(events_cli),
        "events_ratio": round(events_http / events_cli, 4),
        "goal_ratio": GOAL_RATIO,
        "goal_p99_ms": GOAL_P99_MS,
        "goal_events_ratio": GOAL_EVENTS_RATIO,
        "meets_goal_ratio": ratio >= GOAL_RATIO,
        "meets_goal_p99": decisions["p99_ms"] <= GOAL_P99_MS,
        "meets_goal_events": events_http / events_cli >= GOAL_EVENTS_RATIO,
        "quick": args.quick,
        "seed": args.seed,
    }
    return emit(report)


def _events(folder: Path, count: int, seed: int) -> Path:
    import random

    from socialcredit.instants import format_instant, now_us

    rng = random.Random(seed)
    day = 86_400_000_000
    start = now_us() - 300 * day
    path = folder / "events.jsonl"
    with path.open("w", encoding="utf-8") as stream:
        for i in range(count):
            stream.write(json.dumps({"subject": f"resident{rng.randrange(count // 5)}", "type": "traffic.violation",
                                     "occurred_at": format_instant(start + rng.randrange(250) * day),
                                     "key": f"e{i}", "attributes": {}}) + "\n")
    return path


def _ingest_over_http(folder: Path, events: Path, python: str) -> float:
    import httpx

    url, key_file = f"sqlite:///{folder}/http.db", folder / "http.key"
    _service, provider = build(url, key_file, 0)
    port = free_port()
    server = Server([python, "-m", "socialcredit", "--db", url, "--key-file", str(key_file), "serve", "--port",
                     str(port), "--log-level", "warning"], env(), port, folder / "events.log")
    lines = events.read_bytes().splitlines(keepends=True)
    try:
        with httpx.Client(base_url=server.base, timeout=600,
                          headers={"Authorization": f"Bearer {provider}", "Content-Type": "application/x-ndjson"}
                          ) as http:
            note(f"{len(lines):,} events over HTTP in batches of {BATCH:,}")
            started = time.perf_counter()
            for first in range(0, len(lines), BATCH):
                response = http.post("/v1/events", content=b"".join(lines[first:first + BATCH]))
                if response.status_code != 200 or response.json()["accepted"] != len(lines[first:first + BATCH]):
                    raise SystemExit(f"a batch was refused: {response.text[:300]}")
            return time.perf_counter() - started
    finally:
        server.stop()


def _ingest_by_cli(folder: Path, events: Path, python: str) -> float:
    url, key_file = f"sqlite:///{folder}/cli.db", folder / "cli.key"
    build(url, key_file, 0)
    note("the same file by `socialcredit ingest`")
    started = time.perf_counter()
    done = subprocess.run([python, "-m", "socialcredit", "--db", url, "--key-file", str(key_file), "ingest",
                           str(events), "--provider", "town", "--json"], capture_output=True, text=True, env=env())
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ingest failed: {done.stderr[-500:]}")
    return elapsed


if __name__ == "__main__":
    main()
