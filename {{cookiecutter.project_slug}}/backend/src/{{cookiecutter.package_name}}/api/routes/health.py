"""Liveness, readiness and metrics."""

import redis
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ...db import new_session
from ...settings import get_settings

router = APIRouter(tags=["health"])
# Readiness answers fast: Redis slower than this counts as down (PostgreSQL:
# its connections' 2 s connect timeout, db.py).
CHECK_TIMEOUT_SECONDS = 1


def unavailable_dependencies() -> list[str]:
    down = []
    try:
        with new_session() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        down.append("db")
    broker = redis.Redis.from_url(
        get_settings().celery_broker_url,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        broker.ping()
    except redis.RedisError:
        down.append("broker")
    finally:
        broker.close()
    return down


@router.get("/healthz")
def healthz() -> dict:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz() -> JSONResponse:
    """Ready when the database and the broker answer (within 2 s and 1 s);
    503 names those that do not."""
    down = unavailable_dependencies()
    if down:
        return JSONResponse({"status": "unavailable", "down": down}, status_code=503)
    return JSONResponse({"status": "ready", "down": []})


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
