"""Write .env with fresh random secrets, keep the answers for updates, and
drop the CI workflow when no CI was chosen."""

import json
import secrets
import shutil
from pathlib import Path

SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_PASSWORD")
CONTEXT = json.loads(r"""{{ cookiecutter | jsonify }}""")


def with_fresh_secrets(example: str) -> str:
    lines = []
    for line in example.splitlines():
        name, _, _ = line.partition("=")
        if name in SECRETS:
            # URL-safe, because the password is also part of DATABASE_URL.
            line = f"{name}={secrets.token_urlsafe(24)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def replay_file() -> dict:
    """The answers in cookiecutter's replay format, for `--replay-file`;
    without this machine's paths."""
    answers = {name: value for name, value in CONTEXT.items() if not name.startswith("_") or name == "_template"}
    return {"cookiecutter": answers}


env = Path(".env")
env.write_text(with_fresh_secrets(Path(".env.example").read_text()))
env.chmod(0o600)
Path(".cookiecutter.json").write_text(json.dumps(replay_file(), indent=2) + "\n")
# Cookiecutter cannot skip a folder whose templated name renders empty.
if CONTEXT["ci"] == "none":
    shutil.rmtree(".github")
