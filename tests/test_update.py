"""The update path with the real tools, offline: cruft from PyPI against a
local git clone of the template, and cookiecutter's replay. An update brings
the template's change and nothing else: no .rej or .orig file, .env
untouched, and no secret in any diff."""

import re
import shutil
import subprocess

import pytest
from conftest import TEMPLATE, VENV_BIN, run

SLUG = "celery_stack"
CHANGE = "# A line a template update added.\n"
GIT_IDENTITY = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]


def git(*args: str, cwd) -> subprocess.CompletedProcess:
    return run(["git", *GIT_IDENTITY, *args], cwd=cwd)


def commit_all(repo, message: str) -> None:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)


@pytest.fixture
def template_repo(tmp_path):
    """The template as it is on disk now, committed to a local git repository."""
    repo = tmp_path / "template"
    ignored = shutil.ignore_patterns(".git", ".venv", "demo", "__pycache__", ".pytest_cache", ".ruff_cache")
    shutil.copytree(TEMPLATE, repo, ignore=ignored)
    git("init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "The template")
    return repo


def change_the_template(repo) -> None:
    compose = repo / "{{cookiecutter.project_slug}}" / "compose.yaml"
    compose.write_text(compose.read_text() + CHANGE)
    commit_all(repo, "A template update")


def start_using(project) -> bytes:
    """What a user does first: `make env` (the first `make up` does it), then
    commit. Returns .env as written."""
    run(["python3", "scripts/new_env.py"], cwd=project)
    git("init", "-q", "-b", "main", cwd=project)
    commit_all(project, "Generated")
    return (project / ".env").read_bytes()


def assert_no_secret_in(diff: str, env: bytes) -> None:
    assert not re.search(r"^[-+].*_PASSWORD=", diff, re.MULTILINE), diff
    secrets = re.findall(rb"^[A-Z_]+_PASSWORD=(.+)$", env, re.MULTILINE)
    assert len(secrets) == 3
    assert not any(secret.decode() in diff for secret in secrets)


def test_cruft_update_brings_the_change_and_never_touches_secrets(tmp_path, template_repo):
    cruft = str(VENV_BIN / "cruft")
    run([cruft, "create", "--no-input", "--output-dir", str(tmp_path), str(template_repo)], cwd=tmp_path)
    project = tmp_path / SLUG
    env = start_using(project)
    change_the_template(template_repo)

    outdated = subprocess.run([cruft, "check"], cwd=project, capture_output=True, text=True, check=False)
    assert outdated.returncode != 0 and "out of date" in outdated.stdout
    update = run([cruft, "update", "--skip-apply-ask"], cwd=project)
    print(update.stdout, update.stderr)

    assert (project / "compose.yaml").read_text().endswith(CHANGE)
    assert not [path for path in project.rglob("*") if path.suffix in (".rej", ".orig")]
    assert (project / ".env").read_bytes() == env
    changed = git("status", "--short", cwd=project).stdout.split("\n")
    assert sorted(line.split()[-1] for line in changed if line) == [".cruft.json", "compose.yaml"]
    assert_no_secret_in(git("diff", cwd=project).stdout, env)
    run([cruft, "check"], cwd=project)


def test_a_replayed_render_differs_only_by_the_template_change_and_shows_no_secret(tmp_path, template_repo):
    cookiecutter = str(VENV_BIN / "cookiecutter")
    run([cookiecutter, "--no-input", "--output-dir", str(tmp_path), str(template_repo)], cwd=tmp_path)
    project = tmp_path / SLUG
    env = start_using(project)
    change_the_template(template_repo)

    # The generated README's replay path, word for word.
    regen = tmp_path / "regen"
    replay = ["--replay-file", ".cookiecutter.json", "--output-dir", str(regen), str(template_repo)]
    run([cookiecutter, *replay], cwd=project)
    # The render itself holds no secret, so no way of comparing can show one.
    rendered = {path.name: path.read_text() for path in (regen / SLUG).rglob("*env*") if path.is_file()}
    assert ".env" not in rendered
    placeholders = re.findall(r"^\w+_PASSWORD=(.*)$", rendered[".env.example"], re.MULTILINE)
    assert len(placeholders) == 3 and all(value.startswith("change-me") for value in placeholders)
    compare = ["--work-tree", str(regen / SLUG)]
    assert git(*compare, "status", "--short", cwd=project).stdout.split() == ["M", "compose.yaml"]
    diff = git(*compare, "diff", cwd=project).stdout
    assert f"+{CHANGE}" in diff
    assert_no_secret_in(diff, env)
    assert (project / ".env").read_bytes() == env
