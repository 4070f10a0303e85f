#!/usr/bin/env python3
"""Create .env from .env.example, with a fresh random value for every
`*_PASSWORD` and `*_TOKEN`. `make env` runs this, and so does the first `make up`.

It never overwrites an existing .env. Secrets are made once, on the machine
that runs the stack, and are never part of what the template renders: an
update (cruft, or a replayed render) can never touch them. When a newer
.env.example adds a password that .env lacks, it is appended; no existing
line is changed. Standard library only.
"""

import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET = re.compile(r"^([A-Z0-9_]*_(?:PASSWORD|TOKEN))=", re.MULTILINE)


def fresh_secret() -> str:
    # URL-safe: the Redis and PostgreSQL passwords are parts of URLs.
    return secrets.token_urlsafe(24)


def create(env: Path, example: str) -> None:
    lines = [
        f"{match.group(1)}={fresh_secret()}" if (match := SECRET.match(line)) else line for line in example.splitlines()
    ]
    # Private, and only if absent, in one step.
    descriptor = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines) + "\n")
    print(f"new_env: wrote {env.name} with fresh {', '.join(SECRET.findall(example))}")


def add_missing(env: Path, example: str) -> None:
    present = set(SECRET.findall(env.read_text()))
    missing = [name for name in SECRET.findall(example) if name not in present]
    if not missing:
        print(f"new_env: {env.name} exists; left as it is")
        return
    text = env.read_text()
    with env.open("a") as file:
        file.write("" if text.endswith("\n") or not text else "\n")
        file.writelines(f"{name}={fresh_secret()}\n" for name in missing)
    print(f"new_env: added a fresh {', '.join(missing)} to {env.name}; nothing else changed")


def main() -> int:
    env, example = ROOT / ".env", (ROOT / ".env.example").read_text()
    if env.exists():
        add_missing(env, example)
    else:
        create(env, example)
    return 0


if __name__ == "__main__":
    sys.exit(main())
