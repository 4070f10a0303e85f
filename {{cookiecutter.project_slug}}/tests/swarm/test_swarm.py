"""The stack on Docker Swarm, as `make deploy` puts it there: it converges,
processes events, keeps its secrets out of the environment, heals a killed
worker task, and `docker stack rm` leaves nothing of it behind."""

import json
import re
import time

from support import container_logs, docker, psql_command, read_env_file, wait_for


def test_the_stack_converges_with_replicated_workers_and_its_beat(deployed):
    services = deployed.services()
    assert services["worker"]["Replicas"] == "2/2"
    assert services["beat"]["Replicas"] == "{% if cookiecutter.beat_scheduler == 'redbeat' %}2/2{% else %}1/1{% endif %}"
{%- if cookiecutter.web == 'fastapi' %}
    assert services["api"]["Replicas"] == "2/2"
{%- endif %}


def test_events_are_processed(deployed):
    deployed.exec("worker", "python", "-m", "{{ cookiecutter.package_name }}", "emit", "--count", "50")
    query = "SELECT count(*) FROM outbox_events WHERE status = 'processed'"
    psql = [*psql_command(read_env_file()), "-tAc", query]
    wait_for(lambda: deployed.exec("db", *psql).strip() == "50", timeout=60, message="50 events processed")


{% if cookiecutter.web == 'fastapi' %}POST_ORDER = """
import json, sys, urllib.request
request = urllib.request.Request(
    "http://api:8000/orders", json.dumps({"reference": "swarm"}).encode(), {"Content-Type": "application/json"}
)
print(json.load(urllib.request.urlopen(request, timeout=10))["id"])
"""


def test_the_api_takes_orders_on_the_overlay_and_they_are_confirmed(deployed):
    # Each POST goes to one of the two replicas, by DNS round robin.
    ids = [deployed.exec("worker", "python", "-c", POST_ORDER).strip() for _ in range(4)]
    psql = [*psql_command(read_env_file()), "-tAc", "SELECT count(*) FROM order_confirmations WHERE order_id IN ("]
    psql[-1] += ", ".join(f"'{order_id}'" for order_id in ids) + ")"
    wait_for(lambda: deployed.exec("db", *psql).strip() == "4", timeout=60, message="the API's orders confirmed")


{% endif -%}
def test_workers_are_named_after_their_slot(deployed):
    names = {re.search(r"(celery@\S+) v", container_logs(c)).group(1) for c in deployed.containers("worker")}
    assert names == {f"celery@{deployed.name}_worker-1", f"celery@{deployed.name}_worker-2"}


def test_no_secret_is_in_any_containers_or_services_environment(deployed):
    inspected = docker("inspect", *deployed.containers()).stdout
    namespace = f"label=com.docker.stack.namespace={deployed.name}"
    services = docker("service", "ls", "-q", "--filter", namespace).stdout.split()
    inspected += docker("service", "inspect", *services).stdout
    env = read_env_file()
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_PASSWORD"{% if cookiecutter.web == 'fastapi' %}, "API_TOKEN"{% endif %}):
        assert env[name] not in inspected, f"{name} is visible in docker inspect"
    worker_env = json.loads(docker("inspect", deployed.containers("worker")[0]).stdout)[0]["Config"]["Env"]
    assert "CELERY_BROKER_URL=" in worker_env


def test_swarm_heals_a_killed_worker_task(deployed, figures):
    before = set(deployed.containers("worker"))
    killed = sorted(before)[0]
    started = time.monotonic()
    docker("kill", killed)

    def replaced() -> bool:
        now = set(deployed.containers("worker"))
        return (
            killed not in now
            and bool(now - before)
            and all(deployed.health(container) == "healthy" for container in now)
            and deployed.services()["worker"]["Replicas"] == "2/2"
        )

    wait_for(replaced, timeout=120, interval=1, message="Swarm to start a new worker task in the killed one's place")
    figures.append(("Swarm replaced a killed worker task (new task healthy)", f"{time.monotonic() - started:.1f} s"))


def test_make_undeploy_leaves_nothing_behind_but_the_volumes(deployed):
    """docker stack rm, and the finished migrate job's container that it keeps."""
    deployed.undeploy()
    assert deployed.leftovers() == {"services": [], "containers": [], "networks": [], "secrets": []}
