"""Reject bad answers before anything is written; cookiecutter then removes
the half-made project folder. One line on stderr says which answer, the value
given and the rule it broke."""

import json
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")
PYTHON_VERSIONS = ("3.12", "3.13", "3.14")
CI_CHOICES = ("github", "none")
BEAT_SCHEDULERS = ("file", "redbeat")
WEB_CHOICES = ("fastapi", "none")


def whole_number(value: str, low: int, high: int | None = None) -> bool:
    if not re.fullmatch(r"[0-9]+", value):
        return False
    return int(value) >= low and (high is None or int(value) <= high)


RULES = {
    "project_slug": (lambda v: re.fullmatch(r"[a-z][a-z0-9_-]*", v), "must match ^[a-z][a-z0-9_-]*$"),
    "package_name": (lambda v: re.fullmatch(r"[a-z][a-z0-9_]*", v), "must match ^[a-z][a-z0-9_]*$"),
    "python_version": (lambda v: v in PYTHON_VERSIONS, f"one of {', '.join(PYTHON_VERSIONS)}"),
    "outbox_interval_seconds": (lambda v: whole_number(v, 1), "a whole number of seconds, at least 1"),
    "cleanup_hour_utc": (lambda v: whole_number(v, 0, 23), "an hour from 0 to 23"),
    "outbox_retention_days": (lambda v: whole_number(v, 1), "a whole number of days, at least 1"),
    "flower_port": (lambda v: whole_number(v, 1024, 65535), "a port from 1024 to 65535"),
    "ci": (lambda v: v in CI_CHOICES, f"one of {', '.join(CI_CHOICES)}"),
    "beat_scheduler": (lambda v: v in BEAT_SCHEDULERS, f"one of {', '.join(BEAT_SCHEDULERS)}"),
    "web": (lambda v: v in WEB_CHOICES, f"one of {', '.join(WEB_CHOICES)}"),
}

for name, (valid, rule) in RULES.items():
    value = str(ANSWERS[name])
    if not valid(value):
        print(f"ERROR: {name}={value!r} is invalid: {rule}.", file=sys.stderr)
        sys.exit(1)
