"""8 concurrent submitters over HTTP against 4 workers, on SQLite and on PostgreSQL.

Each submitter sends its own batches (some twice, as a client retrying would); the workers
append through one database. Afterwards: events in = events stored, none twice, the
sequence has no gap, `verify` passes, and no request got a 5xx (a busy database is waited
for, or answered 503, never 500; none is expected here).
"""

from __future__ import annotations

import json
import threading

import httpx

from live import OPERATOR, Server, bearer

SUBMITTERS = 8
BATCHES = 6
EVENTS = 150


def test_eight_submitters_four_workers(make_registry, database_url, tmp_path):
    registry = make_registry("nosedive")
    keys = [registry.principals.add(f"city-{n}", "provider", grants=["official.*"], caller=OPERATOR).api_key
            for n in range(SUBMITTERS)]
    statuses: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    with Server(database_url, tmp_path / "registry.key", tmp_path / "server.log", workers=4,
                env={"SOCIALCREDIT_API_RATE_LIMITS": json.dumps({"provider": 0})}) as server:

        def submitter(n: int) -> None:
            try:
                with httpx.Client(base_url=server.base, headers=bearer(keys[n]), timeout=120) as http:
                    for b in range(BATCHES):
                        batch = [{"subject": f"resident{(n * 31 + b * 7 + i) % 500}", "type": "official.penalty",
                                  "occurred_at": "2026-01-05T00:00:00Z", "key": f"s{n}-b{b}-e{i}"}
                                 for i in range(EVENTS)]
                        for _send in range(2 if b % 3 == 0 else 1):  # some batches sent again: duplicates
                            response = http.post("/v1/events", json=batch)
                            with lock:
                                statuses.append(response.status_code)
                            assert response.status_code == 200, response.text[:300]
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=submitter, args=(n,)) for n in range(SUBMITTERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
    assert not failures, failures[:3]
    assert all(status < 500 for status in statuses)
    assert registry.size() == 1 + SUBMITTERS * BATCHES * EVENTS
    with registry.store.db.read() as tx:
        seqs = [row[0] for row in tx.all("SELECT seq FROM entries ORDER BY seq")]
        twice = tx.all("SELECT provider, key FROM entries WHERE kind = 'event' GROUP BY provider, key "
                       "HAVING count(*) > 1")
    assert seqs == list(range(1 + SUBMITTERS * BATCHES * EVENTS))
    assert twice == []
    assert registry.verify().ok
