"""POST /tasks/{key}/run: a periodic task now, as `make run-task` runs it."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ...celery_app import app as celery
from ...settings import get_settings

router = APIRouter(tags=["tasks"])
bearer = HTTPBearer(auto_error=False)


def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    expected = get_settings().api_token
    given = credentials.credentials if credentials else ""
    # Constant time; and with no API_TOKEN set, nothing is accepted.
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401, "a valid Authorization: Bearer <API_TOKEN> is required", {"WWW-Authenticate": "Bearer"}
        )


@router.post("/tasks/{key}/run", status_code=202, dependencies=[Depends(require_token)])
def run_task(key: str) -> dict:
    """Send periodic task KEY (a beat schedule key) now; answers its task id."""
    schedule = celery.conf.beat_schedule
    if key not in schedule:
        raise HTTPException(404, f"{key!r} is not a periodic task; choose from {', '.join(sorted(schedule))}")
    result = celery.send_task(schedule[key]["task"])
    return {"task": key, "id": result.id}
