"""The anchor of bench_http.py: a bare FastAPI endpoint that answers a constant JSON body.

    python bench/_bare_app.py PORT WORKERS BODY_BYTES

Served by uvicorn with the same settings as `socialcredit serve` (workers, no access log).
"""

from __future__ import annotations

import os
import sys


def create_app():
    from fastapi import FastAPI
    from starlette.responses import Response

    size = int(os.environ["BARE_BODY_BYTES"])
    body = ('{"pad": "' + "x" * max(0, size - 11) + '"}').encode()
    app = FastAPI()

    @app.post("/bare")
    async def bare() -> Response:
        return Response(body, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    import uvicorn

    port, workers, size = sys.argv[1:4]
    os.environ["BARE_BODY_BYTES"] = size
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run("_bare_app:create_app", factory=True, host="127.0.0.1", port=int(port), workers=int(workers),
                log_level="warning", access_log=False, server_header=False)
