"""The generated project's Kubernetes manifests: `make lint-kubernetes`
renders each overlay, validates it against Kubernetes' schemas and scans it
with checkov, and fails when either finds a fault."""

import subprocess

import pytest
import yaml
from conftest import run


def render(project, overlay: str, kube_venv) -> list[dict]:
    command = [str(kube_venv / "bin" / "kubectl"), "kustomize", "--load-restrictor", "LoadRestrictionsNone"]
    return list(yaml.safe_load_all(run([*command, f"deploy/kubernetes/overlays/{overlay}"], cwd=project).stdout))


@pytest.fixture(scope="module")
def project(cookies_session, kube_venv):
    result = cookies_session.bake(extra_context={"beat_scheduler": "redbeat"})
    assert result.exit_code == 0, result.exception
    run(["make", "lint-kubernetes", f"KUBE_VENV={kube_venv}"], cwd=result.project_path)
    return result.project_path


def workloads(resources: list[dict]) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] in ("Deployment", "Job")}


def test_each_overlay_runs_beat_as_its_scheduler_needs(project, kube_venv):
    file_beat = workloads(render(project, "file", kube_venv))["beat"]["spec"]
    assert file_beat["replicas"] == 1 and file_beat["strategy"]["type"] == "Recreate"
    volumes = file_beat["template"]["spec"]["volumes"]
    assert {"name": "schedule", "persistentVolumeClaim": {"claimName": "beat-schedule"}} in volumes
    redbeat = render(project, "redbeat", kube_venv)
    assert workloads(redbeat)["beat"]["spec"]["replicas"] == 2
    assert "beat" in {r["metadata"]["name"] for r in redbeat if r["kind"] == "PodDisruptionBudget"}


def test_every_app_container_runs_as_compose_runs_it(project, kube_venv):
    for name, workload in workloads(render(project, "redbeat", kube_venv)).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 10001, name
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        assert {"requests", "limits"} <= container["resources"].keys(), name
        env = {variable["name"] for variable in container["env"]}
        assert {"DATABASE_URL", "CELERY_BROKER_URL"} <= env, name
    worker = workloads(render(project, "redbeat", kube_venv))["worker"]["spec"]["template"]["spec"]
    # Longer than the worker's soft shutdown (50 s).
    assert worker["terminationGracePeriodSeconds"] > 50


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"), "CKV_K8S_22"),
        (("runAsNonRoot: true", "runAsNonRoot: true\n        runAsUsr: 10001"), "runAsUsr"),
    ],
    ids=["checkov-finding", "schema-violation"],
)
def test_a_fault_in_the_manifests_fails_lint(project, kube_venv, change, finding):
    security = project / "deploy" / "kubernetes" / "base" / "security.yaml"
    original = security.read_text()
    security.write_text(original.replace(*change))
    try:
        done = subprocess.run(
            ["make", "lint-kubernetes", f"KUBE_VENV={kube_venv}"], cwd=project, capture_output=True, text=True
        )
    finally:
        security.write_text(original)
    assert done.returncode != 0
    assert finding in done.stdout + done.stderr
