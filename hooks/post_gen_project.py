"""Write .env from .env.example with fresh random secrets."""

import secrets
from pathlib import Path

SECRETS = ("POSTGRES_PASSWORD", "FLOWER_PASSWORD")


def with_fresh_secrets(example: str) -> str:
    lines = []
    for line in example.splitlines():
        name, _, _ = line.partition("=")
        if name in SECRETS:
            # URL-safe, because the password is also part of DATABASE_URL.
            line = f"{name}={secrets.token_urlsafe(24)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


env = Path(".env")
env.write_text(with_fresh_secrets(Path(".env.example").read_text()))
env.chmod(0o600)
