"""Every endpoint × every role, against a live `socialcredit serve` on SQLite and PostgreSQL.

Each row is one endpoint and the status each caller gets: the roles' own keys, a subject
asking about someone else, a service asking about another service's decision, a key whose
grants do not cover the request, no key, and a revoked key. Then no answer may leak what
its caller may not see: another subject's pseudonym or reference, any pseudonym to a provider
or a service, a standing (score, tier) to a service, anything about subjects to no key.
"""

from __future__ import annotations

import itertools
import json

import httpx

from live import LACIE, NAOMI, OPERATOR, Server, bearer, populate

ROLES = ("admin", "auditor", "reviewer", "provider", "service", "subject")
ANY_KEY = {role: 200 for role in ROLES}
NOBODY = {"none": 401, "revoked": 401}
counter = itertools.count()


def only(**allowed: int) -> dict[str, int]:
    """403 for every role not named, 401 without a valid key."""
    return {**{role: 403 for role in ROLES}, **NOBODY, **allowed}


def public() -> dict[str, int]:
    return {**ANY_KEY, "none": 200, "revoked": 200}


def unique(text: str) -> str:
    return f"{text}-{next(counter)}"


def penalty() -> list[dict]:
    return [{"subject": NAOMI, "type": "official.penalty", "occurred_at": "2026-01-05T00:00:00Z",
             "key": unique("p"), "attributes": {"reason": "jaywalking"}}]


def rows(ctx: dict) -> list[tuple]:
    """(label, method, path, json body or None, {caller: status}); `ctx` holds ids made beforehand."""
    p_lacie, p_naomi = ctx["p_lacie"], ctx["p_naomi"]
    own, other = ctx["decision"], ctx["other_decision"]
    return [
        ("events", "POST", "/v1/events", penalty, only(provider=200)),
        ("events outside the grants", "POST", "/v1/events",
         lambda: [{"subject": NAOMI, "type": "peer.opt_in", "occurred_at": "2026-01-05T00:00:00Z",
                   "key": unique("o")}], only()),
        ("events as another provider", "POST", "/v1/events",
         lambda: [{**penalty()[0], "provider": "another-city"}], only()),
        ("submissions", "GET", "/v1/events/submissions", None, only(provider=200)),
        ("a submission", "GET", f"/v1/events/submissions/{ctx['submission']}", None, only(provider=200)),
        ("decision", "POST", "/v1/decisions", lambda: {"subject": NAOMI, "service": "venue.entry"},
         only(service=201)),
        ("decision outside the grants", "POST", "/v1/decisions",
         lambda: {"subject": NAOMI, "service": "housing.prime"}, only()),
        ("own decision", "GET", f"/v1/decisions/{own}", None, only(service=200, auditor=200, reviewer=200)),
        ("another service's decision", "GET", f"/v1/decisions/{other}", None,
         only(service=404, auditor=200, reviewer=200)),
        ("replay", "GET", f"/v1/decisions/{own}/replay", None, only(service=200, auditor=200, reviewer=200)),
        ("another's replay", "GET", f"/v1/decisions/{other}/replay", None,
         only(service=404, auditor=200, reviewer=200)),
        ("own standing by reference", "POST", "/v1/standings/query", lambda: {"subject": LACIE},
         only(auditor=200, reviewer=200, subject=200)),
        ("another's standing by reference", "POST", "/v1/standings/query", lambda: {"subject": NAOMI},
         only(auditor=200, reviewer=200)),
        ("own explanation by reference", "POST", "/v1/explanations/query", lambda: {"subject": LACIE},
         only(auditor=200, reviewer=200, subject=200)),
        ("another's explanation", "POST", "/v1/explanations/query", lambda: {"subject": NAOMI},
         only(auditor=200, reviewer=200)),
        ("own standing by pseudonym", "GET", f"/v1/subjects/{p_lacie}/standing", None,
         only(auditor=200, reviewer=200, subject=200)),
        ("another's standing by pseudonym", "GET", f"/v1/subjects/{p_naomi}/standing", None,
         only(auditor=200, reviewer=200)),
        ("own explanation by pseudonym", "GET", f"/v1/subjects/{p_lacie}/explanation", None,
         only(auditor=200, reviewer=200, subject=200)),
        ("another's explanation by pseudonym", "GET", f"/v1/subjects/{p_naomi}/explanation", None,
         only(auditor=200, reviewer=200)),
        ("me", "GET", "/v1/me", None, {**ANY_KEY, **NOBODY}),
        ("my standing", "GET", "/v1/me/standing", None, only(subject=200)),
        ("my explanation", "GET", "/v1/me/explanation", None, only(subject=200)),
        ("my decisions", "GET", "/v1/me/decisions", None, only(subject=200)),
        ("my reads", "GET", "/v1/me/reads", None, only(subject=200)),
        ("my reviews", "GET", "/v1/me/reviews", None, only(subject=200)),
        ("rating", "POST", "/v1/ratings", lambda: {"subject": NAOMI, "stars": 4, "interaction": unique("coffee")},
         only(subject=201)),
        ("rating as someone else", "POST", "/v1/ratings",
         lambda: {"subject": LACIE, "stars": 5, "interaction": unique("tea"), "rater": NAOMI}, only()),
        ("checkpoint", "GET", "/v1/ledger/checkpoint", None, public()),
        ("inclusion", "GET", "/v1/ledger/inclusion/0", None, public()),
        ("consistency", "GET", "/v1/ledger/consistency?first=1", None, public()),
        ("verify", "POST", "/v1/ledger/verify", None, only(auditor=200)),
        ("audit", "GET", f"/v1/audit?subject={p_naomi}", None, only(auditor=200)),
        ("aggregates", "GET", "/v1/aggregates", None, only(auditor=200)),
        ("principals", "GET", "/v1/principals", None, only(admin=200)),
        ("add a principal", "POST", "/v1/principals", lambda: {"name": unique("auditor"), "role": "auditor"},
         only(admin=201)),
        ("a principal", "GET", "/v1/principals/venue", None, only(admin=200)),
        ("revoke a principal", "DELETE", "/v1/principals/{victim}", None, only(admin=200)),
        ("policies", "GET", "/v1/policies", None, public()),
        ("a policy", "GET", "/v1/policies/nosedive", None, public()),
        ("public lists", "GET", "/v1/lists", None, public()),
        ("a list that is not public", "GET", "/v1/lists/rating-ring-suspects", None,
         {**{role: 404 for role in ROLES}, "none": 404, "revoked": 404}),
        ("lint", "POST", "/v1/policies/lint", lambda: {"pack": "peeple"}, only(admin=200)),
        ("activate", "POST", "/v1/policies", lambda: {"pack": "nosedive"}, only(admin=201)),
        ("health", "GET", "/healthz", None, public()),
        ("ready", "GET", "/readyz", None, public()),
    ]


CALLERS = (*ROLES, "none", "revoked")
KEY_OF = {"service": "service", "subject": "subject"}


def _forbidden_strings(caller: str, ctx: dict) -> list[str]:
    """What an answer to this caller must never contain."""
    never = [NAOMI, '"score"'] if caller in ("provider", "service", "none", "revoked") else []
    if caller in ("provider", "service", "none", "revoked", "admin"):
        never += [ctx["p_naomi"], ctx["p_lacie"]] if caller != "admin" else [ctx["p_naomi"]]
    if caller == "subject":
        never += [ctx["p_naomi"], NAOMI]
    if caller == "service":
        never += ['"tier"']
    return never


def test_every_endpoint_for_every_caller(make_registry, database_url, tmp_path):
    registry = make_registry("nosedive")
    cast = populate(registry)
    keys = {**cast.keys, "none": None}
    ctx = {"p_lacie": cast.pseudonyms[LACIE], "p_naomi": cast.pseudonyms[NAOMI]}
    with Server(database_url, tmp_path / "registry.key", tmp_path / "server.log",
                env={"SOCIALCREDIT_API_RATE_LIMITS": json.dumps({r: 0 for r in (*ROLES, "anonymous")})}) as server, \
            httpx.Client(base_url=server.base, timeout=60) as http:
        made = http.post("/v1/decisions", json={"subject": LACIE, "service": "venue.entry"},
                         headers=bearer(keys["service"]))
        assert made.status_code == 201, made.text
        ctx["decision"] = made.json()["decision_id"]
        ctx["other_decision"] = http.post("/v1/decisions", json={"subject": NAOMI, "service": "housing.prime"},
                                          headers=bearer(keys["other_service"])).json()["decision_id"]
        ctx["submission"] = http.post("/v1/events", json=penalty(), headers=bearer(keys["provider"])).json()[
            "submission"]
        table = rows(ctx)
        mismatches, leaks = [], []
        for label, method, path, body, expected in table:
            # An admin's success changes things (a revoked principal): everyone else first.
            for caller in sorted(CALLERS, key=lambda c: c == "admin"):
                target = path
                if "{victim}" in path:
                    victim = f"victim-{next(counter)}"
                    registry.principals.add(victim, "auditor", caller=OPERATOR)
                    target = path.replace("{victim}", victim)
                payload = body() if callable(body) else body
                response = http.request(method, target, json=payload, headers=bearer(keys[caller]))
                if response.status_code != expected[caller]:
                    mismatches.append(f"{label} as {caller}: {response.status_code} (expected {expected[caller]}) "
                                      f"{response.text[:200]}")
                if response.status_code >= 400:
                    assert response.headers["content-type"].startswith("application/problem+json"), (label, caller)
                    assert response.json()["status"] == response.status_code
                sent = target + json.dumps(payload)
                for never in _forbidden_strings(caller, ctx):
                    if never in sent and never.strip('"') not in ("score", "tier"):
                        continue  # what the caller sent itself is echoed in the problem's `instance`
                    if never in response.text:
                        leaks.append(f"{label} as {caller}: the answer holds {never!r}")
        assert mismatches == []
        assert leaks == []
        served = {(m, p) for p, item in http.get("/v1/openapi.json").json()["paths"].items() for m in item}
        covered = {(m.lower(), _template(p)) for _l, m, p, _b, _e in table}
        assert served - covered == set(), "endpoints missing from the matrix"


def _template(path: str) -> str:
    path = path.split("?")[0]
    replacements = [("/v1/decisions/d-", "/v1/decisions/{decision_id}"), ("/v1/subjects/", None),
                    ("/v1/events/submissions/s-", "/v1/events/submissions/{submission_id}"),
                    ("/v1/ledger/inclusion/", "/v1/ledger/inclusion/{seq}"),
                    ("/v1/policies/nosedive", "/v1/policies/{ref}"), ("/v1/lists/", "/v1/lists/{list_id}"), ("/v1/principals/", "/v1/principals/{name}")]
    if path.endswith("/replay"):
        return "/v1/decisions/{decision_id}/replay"
    for start, template in replacements:
        if path.startswith(start) and path != "/v1/policies/lint":
            if template is None:
                return "/v1/subjects/{pseudonym}/" + path.rsplit("/", 1)[1]
            return template
    return path
