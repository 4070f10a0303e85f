"""Keep the answers for updates, and drop the CI workflow when no CI was
chosen. Secrets are not made here: `make env` makes them on first use, so no
render ever contains one and an update can never touch them."""

import json
import shutil
from pathlib import Path

CONTEXT = json.loads(r"""{{ cookiecutter | jsonify }}""")


def replay_file() -> dict:
    """The answers in cookiecutter's replay format, for `--replay-file`;
    without this machine's paths."""
    answers = {name: value for name, value in CONTEXT.items() if not name.startswith("_") or name == "_template"}
    return {"cookiecutter": answers}


Path(".cookiecutter.json").write_text(json.dumps(replay_file(), indent=2) + "\n")
# Cookiecutter cannot skip a folder whose templated name renders empty.
if CONTEXT["ci"] == "none":
    shutil.rmtree(".github")
if CONTEXT["web"] == "none":
    shutil.rmtree(Path("backend", "src", CONTEXT["package_name"], "api"))
