"""The FastAPI app: `uvicorn examples.fastapi_app.main:app`.

`/users/{id}` reads through the cache with `await load_user.aget(id)`: the event loop
never blocks on Redis, the broker or the origin, which `/health` (no cache, no database)
shows by answering at once while a stampede of user reads waits on one slow query.
`/metrics` is refresher's Prometheus metrics (examples/metrics_view.py): this process's, or
with PROMETHEUS_MULTIPROC_DIR set (`uvicorn --workers N`), every worker's added up. Each
response names the process that served it (X-Served-By), to show several at work.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request, Response

from examples.fastapi_app.loaders import cache, load_user
from examples.metrics_view import exposition
from examples.userdb import User, db_path, seed


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await asyncio.to_thread(seed, db_path())
    yield
    await cache.aclose()
    cache.close()


app = FastAPI(title="refresher: FastAPI example", lifespan=lifespan)


@app.get("/users/{user_id}")
async def user(user_id: int) -> User:
    found = await load_user.aget(user_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no user {user_id}")
    return found


@app.get("/stats")
async def stats() -> dict[str, int]:
    """This process's cache counters: hits, loads, refreshes asked for, ..."""
    return cache.stats.snapshot()


@app.get("/metrics")
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.middleware("http")
async def served_by(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers["X-Served-By"] = str(os.getpid())
    return response
