"""The FastAPI app, built from the same settings and engine as the Celery
app: `uvicorn {{ cookiecutter.package_name }}.api.app:app`."""

import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import OperationalError

from .routes import health, orders, tasks

# A larger body is refused before it is read: nothing here needs more.
MAX_BODY_BYTES = 64 * 1024
REQUESTS = Counter("api_requests", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "api_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

app = FastAPI(title="{{ cookiecutter.project_name }} API")
app.include_router(orders.router)
app.include_router(tasks.router)
app.include_router(health.router)


@app.middleware("http")
async def limit_body_and_count(request: Request, call_next):
    started = time.perf_counter()
    declared = request.headers.get("content-length", "0")
    if "transfer-encoding" in request.headers:
        # A body of unknown length could be any size.
        response = JSONResponse({"detail": "send the body with a Content-Length"}, status_code=411)
    elif not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        response = JSONResponse({"detail": f"the body must be at most {MAX_BODY_BYTES} bytes"}, status_code=413)
    else:
        response = await call_next(request)
    # The route's template (/orders/{order_id}), not the path: one series per route.
    route = getattr(request.scope.get("route"), "path", "unmatched")
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
    return response


@app.exception_handler(OperationalError)
async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    # PostgreSQL is down or unreachable: say so, without a traceback.
    return JSONResponse({"detail": "the database is unavailable; retry later"}, status_code=503)
