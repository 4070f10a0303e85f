"""`make bench PEER=1`: the same jobs through two peers, on this stack's
PostgreSQL (and Redis), on this machine, with the stack's handler (one row in
order_confirmations per order):

- pgqueuer, a PostgreSQL queue with published figures (peer_pgqueuer.py);
- plain Celery, delay() straight to Redis and no outbox (peer_celery.py).

Each peer drains PEER_JOBS (20,000) jobs enqueued beforehand under every
setting of its knobs in its sweep; its best drain is reported, with its
latency (order commit to confirmation) at the bench's rate under that
setting. The peers run here, from the bench dependency group, and reach the
containers by address.
"""

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import peer_celery
import peer_pgqueuer

from support import Stack, wait_for

JOBS = int(os.environ.get("PEER_JOBS", "20000"))
HERE = Path(__file__).parent
# pgqueuer's benchmark's knobs (tools/benchmark.py): dequeue tasks and their
# batch size; and processes, as `pgq run` is scaled.
PGQUEUER_SWEEP = [
    {"processes": 1, "dequeue": 1, "batch": 10},
    {"processes": 1, "dequeue": 5, "batch": 10},
    {"processes": 1, "dequeue": 5, "batch": 100},
    {"processes": 2, "dequeue": 5, "batch": 10},
    {"processes": 2, "dequeue": 5, "batch": 100},
]
# A Celery worker's: its pool, concurrency and prefetch multiplier. Each task
# commits on its own, so more at once lets PostgreSQL share its WAL flushes.
CELERY_SWEEP = [
    {"pool": "prefork", "concurrency": 2, "prefetch": 4},
    {"pool": "prefork", "concurrency": 2, "prefetch": 64},
    {"pool": "prefork", "concurrency": 8, "prefetch": 16},
    {"pool": "threads", "concurrency": 8, "prefetch": 16},
    {"pool": "threads", "concurrency": 32, "prefetch": 16},
]
FIGURES = """
SELECT count(*), count(DISTINCT o.id), extract(epoch FROM max(c.confirmed_at) - min(c.confirmed_at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.confirmed_at - o.created_at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM c.confirmed_at - o.created_at))
FROM orders o JOIN order_confirmations c ON c.order_id = o.id
"""


def pgqueuer_consumers(knobs: dict) -> list[list[str]]:
    command = [sys.executable, "peer_pgqueuer.py", str(knobs["dequeue"]), str(knobs["batch"])]
    return [command] * knobs["processes"]


def celery_consumers(knobs: dict) -> list[list[str]]:
    worker = [sys.executable, "-m", "celery", "--app=peer_celery", "--quiet", "worker", f"--queues={peer_celery.QUEUE}"]
    setting = [f"--pool={knobs['pool']}", f"--concurrency={knobs['concurrency']}"]
    setting.append(f"--prefetch-multiplier={knobs['prefetch']}")
    # Alone on its queue: no gossip, mingle or heartbeats with the stack's workers.
    alone = ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"]
    return [worker + setting + alone]


def address(stack: Stack, service: str) -> str:
    return next(iter(stack.inspect(service)["NetworkSettings"]["Networks"].values()))["IPAddress"]


@contextlib.contextmanager
def running(commands: list[list[str]], env: dict):
    """The consumers, stopped (SIGTERM, then SIGKILL after 30 s) when the block ends."""
    processes = [subprocess.Popen(command, cwd=HERE, env=env) for command in commands]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def all_confirmed(stack: Stack, count: int, processes: list) -> bool:
    if exited := [process.args for process in processes if process.poll() is not None]:
        raise AssertionError(f"a consumer exited early: {exited}")
    return int(stack.psql("SELECT count(*) FROM order_confirmations")) == count


def figures(stack: Stack, count: int) -> dict:
    """Drain rate and latency from the database; every order confirmed once."""
    confirmed, orders, span, p50, p99 = stack.psql(FIGURES).split("|")
    assert int(confirmed) == int(orders) == count, f"{count} orders, {orders} confirmed ({confirmed} confirmations)"
    return {
        "drain_events_per_s": round(count / float(span)),
        "latency_p50_ms": round(float(p50) * 1000, 1),
        "latency_p99_ms": round(float(p99) * 1000, 1),
    }


@dataclasses.dataclass
class Peer:
    produce: Callable[[int, float | None], None]  # (count, rate or None for a backlog)
    consumers: Callable[[dict], list[list[str]]]  # the commands for one setting
    sweep: list[dict]


def run(stack: Stack, peer: Peer, knobs: dict, env: dict, count: int, rate: float | None) -> dict:
    """A backlog produced first, then drained (rate None); or produced at
    `rate` while the consumers run."""
    stack.empty_outbox()
    if rate is None:
        peer.produce(count, None)
    with running(peer.consumers(knobs), env) as processes:
        if rate is not None:
            peer.produce(count, rate)
        wait_for(lambda: all_confirmed(stack, count, processes), timeout=count / 50 + 60, interval=0.5)
    return figures(stack, count)


def measure_peer(stack: Stack, peer: Peer, env: dict, load: int, rate: float) -> dict:
    drains = []
    for knobs in peer.sweep:
        drained = run(stack, peer, knobs, env, JOBS, None)["drain_events_per_s"]
        drains.append({**knobs, "drain_events_per_s": drained})
        print(f"peers: {knobs}: {drained:,} jobs/s", flush=True)
    best = max(drains, key=lambda drain: drain["drain_events_per_s"])
    knobs = {name: best[name] for name in peer.sweep[0]}
    paced = run(stack, peer, knobs, env, load, rate)
    return {
        "best": knobs,
        "drain_events_per_s": best["drain_events_per_s"],
        "latency_p50_ms": paced["latency_p50_ms"],
        "latency_p99_ms": paced["latency_p99_ms"],
        "sweep": drains,
    }


def measure(stack: Stack, ours: dict, rate: float, seconds: float) -> dict:
    """Both peers beside `ours` (this stack's drain rate of JOBS events and
    latency p99 at `rate`), with this stack's ratio to each."""
    env = stack.env
    host = address(stack, "db")
    database = f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@{host}:5432/{env['POSTGRES_DB']}"
    broker = f"redis://:{env['REDIS_PASSWORD']}@{address(stack, 'redis')}:6379/2"
    peer_celery.app.conf.broker_url = broker
    asyncio.run(peer_pgqueuer.install(database))
    peers = {
        "pgqueuer": Peer(
            lambda count, pace: asyncio.run(peer_pgqueuer.produce(database, count, pace)),
            pgqueuer_consumers,
            PGQUEUER_SWEEP,
        ),
        "celery": Peer(lambda count, pace: peer_celery.produce(database, count, pace), celery_consumers, CELERY_SWEEP),
    }
    process_env = {**os.environ, "PEER_DATABASE_URL": database, "PEER_BROKER_URL": broker}
    results = {"jobs": JOBS, "rate": rate, "this_stack": ours}
    for name, peer in peers.items():
        measured = measure_peer(stack, peer, process_env, round(rate * seconds), rate)
        measured["this_stack_drain_ratio"] = round(ours["drain_events_per_s"] / measured["drain_events_per_s"], 2)
        measured["this_stack_p99_ratio"] = round(ours["latency_p99_ms"] / measured["latency_p99_ms"], 2)
        results[name] = measured
    return results
