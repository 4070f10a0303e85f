"""Whole nodes lost under a steady load of orders{% if cookiecutter.web == 'fastapi' %} through the API{% endif %}: each test
checks from the database that every order's event was processed exactly
once, and reports its recovery time. Node 1 holds PostgreSQL and Redis;
the faults hit nodes 2 and 3, each brought back before the next test.
{%- if cookiecutter.beat_scheduler == 'file' %}

With the file scheduler beat stays beside its schedule's volume on node 1,
so no node can be lost under it here; the redbeat variant tests that.
{%- endif %}
"""

import contextlib
{%- if cookiecutter.beat_scheduler == 'redbeat' %}
import itertools
{%- endif %}
import subprocess
import time
{%- if cookiecutter.beat_scheduler == 'redbeat' %}
from datetime import UTC, datetime
{%- endif %}

{% if cookiecutter.beat_scheduler == 'redbeat' -%}
from support import ORDER_LOAD, PACKAGE, READ_BEAT_ROLE, docker, sweep_sends, wait_for
{%- else -%}
from support import ORDER_LOAD, PACKAGE, docker, wait_for
{%- endif %}

RATE = 20
TARGET = "{% if cookiecutter.web == 'fastapi' %}http://api:8000/orders{% else %}database{% endif %}"
# The lease: the task time limit the layer sets (conftest.py).
LEASE = 45.0
BACKLOG = 3000


@contextlib.contextmanager
def steady_load(stack, seconds: float):
    """Orders at RATE a second for `seconds`, from a worker task on node 1;
    the block ends when the last is written. Yields how many there are."""
    count = int(RATE * seconds)
    number, container = next((n, c) for n, c in stack.tasks("worker") if n == 1)
    command = ["python", "-c", ORDER_LOAD, str(count), str(RATE), TARGET]
    load = subprocess.Popen(
        ["docker", "--host", stack.node_host(number), "exec", container, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield count
        output, _ = load.communicate(timeout=seconds + 120)
        assert load.returncode == 0, output
    finally:
        load.kill()


def settle(stack, emitted: int, since: float) -> float:
    """Every event processed, each with exactly one effect: seconds since `since`."""
    return stack.settle(emitted=emitted, timeout=LEASE + 120, since=since)


def workers_node(stack) -> int:
    """A node other than node 1 with a worker task on it."""
    candidates = sorted({number for number, _ in stack.tasks("worker")} - {1})
    assert candidates, f"no worker outside node 1: {stack.tasks('worker')}"
    return candidates[-1]


{% if cookiecutter.beat_scheduler == 'redbeat' -%}
INTERVAL = 2.0
LOCK_TIMEOUT = 15.0
# beat's max loop interval: how often a standby tries the lock.
STANDBY_CHECK = 5.0


def beat_roles(stack) -> dict[int, str]:
    return {
        number: stack.node_docker(number, "exec", container, "python", "-c", READ_BEAT_ROLE).stdout.strip()
        for number, container in stack.tasks("beat")
    }


def sends(stack, number: int, container: str, after: datetime) -> list[datetime]:
    """When the beat in `container` on node `number` sent the sweep, from its log."""
    done = stack.node_docker(number, "logs", container)
    return sweep_sends(done.stdout + done.stderr, after)


def test_the_standby_beat_sends_when_the_active_beats_node_dies(deployed, recoveries):
    deployed.empty_outbox()
    roles = wait_for(
        lambda: sorted((found := beat_roles(deployed)).values()) == ["active", "standby"] and found,
        timeout=60,
        message="one beat per role, on two nodes",
    )
    active_node = next(number for number, role in roles.items() if role == "active")
    standby_node, standby = next((n, c) for n, c in deployed.tasks("beat") if n != active_node)
    active = next(c for n, c in deployed.tasks("beat") if n == active_node)
    with steady_load(deployed, seconds=40) as emitted:
        time.sleep(5)
        last_before = sends(deployed, active_node, active, datetime.min.replace(tzinfo=UTC))[-1]
        killed_at = datetime.now(UTC)
        started = deployed.kill_node(active_node)
        standing_by = (deployed, standby_node, standby)
        first_after = wait_for(
            lambda: sends(*standing_by, killed_at),
            timeout=LOCK_TIMEOUT + STANDBY_CHECK + 20,
            message="the standby beat to send",
        )[0]
        failover = (first_after - killed_at).total_seconds()
        assert failover <= LOCK_TIMEOUT + STANDBY_CHECK, failover
        # Not missed: the run that fell due while no beat sent goes out at once.
        assert (first_after - last_before).total_seconds() <= LOCK_TIMEOUT + STANDBY_CHECK + INTERVAL
        # Not doubled: the standby keeps the interval.
        sent = wait_for(lambda: len(found := sends(*standing_by, killed_at)) >= 3 and found, timeout=30)
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent)]
        assert all(gap >= 0.5 * INTERVAL for gap in gaps), gaps
    settle(deployed, emitted, started)
    deployed.restart_node(active_node)
    recoveries["active beat's node killed: standby sends"] = failover


{% endif -%}
def test_a_worker_node_killed_mid_drain_loses_nothing(deployed, recoveries):
    deployed.empty_outbox()
    victim = workers_node(deployed)
    with steady_load(deployed, seconds=30) as emitted:
        # A backlog that every worker drains, the victim's too.
        deployed.exec_in("worker", "python", "-m", PACKAGE, "emit", "--count", str(BACKLOG), node=1)
        wait_for(lambda: deployed.outbox()["processing"] > 0, timeout=30, interval=0.1, message="a drain under way")
        started = deployed.kill_node(victim)
    # Its tasks came back (acks_late), and the events it held after their lease.
    recovery = settle(deployed, emitted + BACKLOG, started)
    taken_back = deployed.psql("SELECT count(*) FROM outbox_events WHERE attempts > 1")
    deployed.restart_node(victim)
    recoveries[f"worker node killed mid-drain: every event processed ({taken_back} taken back)"] = recovery


def test_a_worker_node_cut_off_for_60s_does_nothing_twice_and_rejoins(deployed, recoveries):
    deployed.empty_outbox()
    victim = workers_node(deployed)
    node = deployed.node_name(victim)
    # Inside the node, so its address stays: everything in or out on its network is dropped.
    rules = [["INPUT", "-i", "eth0", "-j", "DROP"], ["OUTPUT", "-o", "eth0", "-j", "DROP"]]
    with steady_load(deployed, seconds=70) as emitted:
        time.sleep(5)
        for rule in rules:
            docker("exec", node, "iptables", "-I", *rule)
        wait_for(lambda: deployed.node_states().get(node) == "down", timeout=60, message=f"{node} seen down")
        time.sleep(60)
        for rule in rules:
            docker("exec", node, "iptables", "-D", *rule)
        healed = time.monotonic()
        wait_for(lambda: deployed.node_states().get(node) == "ready", timeout=90, message=f"{node} back")
        rejoined = time.monotonic() - healed
    settle(deployed, emitted, healed)
    recoveries["worker node cut off 60 s: rejoined after the heal"] = rejoined


def test_losing_a_manager_keeps_the_swarm_scheduling(deployed, recoveries):
    deployed.empty_outbox()
    victim = 2
    with steady_load(deployed, seconds=30) as emitted:
        time.sleep(3)
        started = deployed.kill_node(victim)
        wait_for(lambda: deployed.node_states().get(deployed.node_name(victim)) == "down", timeout=60)
        # Two managers of three are a quorum: the swarm still takes orders.
        deployed.node_docker(1, "service", "scale", "--detach", f"{deployed.project}_worker=4")
        wait_for(
            lambda: deployed.swarm_services().get("worker", {}).get("Replicas") == "4/4",
            timeout=120,
            message="a fourth worker scheduled on the nodes left",
        )
        scheduled = time.monotonic() - started
    settle(deployed, emitted, started)
    deployed.node_docker(1, "service", "scale", "--detach", f"{deployed.project}_worker=3")
    deployed.restart_node(victim)
    recoveries["manager lost: swarm scheduled a new worker"] = scheduled
