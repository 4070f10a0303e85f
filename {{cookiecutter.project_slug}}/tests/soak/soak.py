"""`make soak`: the stack for DURATION (default 30m; 90s, 3m, 1h) under a
steady load of orders (SOAK_RATE a second, 200 by default){% if cookiecutter.web == 'fastapi' %} through the API{% endif %},
with faults from the fault suite's catalogue at random times, overlapping
at times; SEED replays a run's sequence. Every 10 s it samples each
service's RSS and CPU (from its cgroup, through Docker's API), the queue
depth in Redis, the outbox's pending and processing events, and beat's last
send. At the end it checks from the database that every order was confirmed
exactly once and that no periodic run was skipped, writes soak.json and
soak.png, and exits 1 on a loss, a double, a skipped run, or a service's
RSS growing faster than SOAK_MAX_GROWTH MB/hour (default 10; fitted on
each container's samples after its first minute, and judged on runs of 20
minutes or more: over a few minutes the fit is noise).
Its Compose project is `{{ cookiecutter.package_name }}_soak` (SOAK_PROJECT_NAME).
"""

import itertools
import json
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import matplotlib
import numpy
from docker import DockerClient
from docker.errors import APIError

from support import COMPOSE, ORDER_LOAD, PACKAGE, READ_BEAT_RECORD, ROOT, Stack, docker, free_port, sweep_sends

matplotlib.use("Agg")
from matplotlib import pyplot

PROJECT = os.environ.get("SOAK_PROJECT_NAME", f"{PACKAGE}_soak")
RATE = float(os.environ.get("SOAK_RATE", "200"))
MAX_GROWTH = float(os.environ.get("SOAK_MAX_GROWTH", "10"))
SAMPLE_EVERY = 10.0
# A fault every this many seconds on average.
MEAN_FAULT_GAP = 45.0
WARM_UP = 60.0
JUDGE_GROWTH_FROM = 20 * 60.0
os.environ.update(
    {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "FLOWER_PORT": str(free_port()),
        "API_PORT": str(free_port()),
        "WORKERS": "2",
        # The fault layer's short sweeps and leases: a fault recovers in seconds.
        "OUTBOX_INTERVAL_SECONDS": "2",
        "TASK_SOFT_TIME_LIMIT": "10",
        "TASK_TIME_LIMIT": "12",
        "WORKER_SOFT_SHUTDOWN_TIMEOUT": "1",
    }
)
INTERVAL = 2.0


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match:
        raise SystemExit(f"soak: DURATION={text!r}: write it as 90s, 3m or 1h")
    return float(match.group(1)) * {"s": 1, "": 1, "m": 60, "h": 3600}[match.group(2)]


class Faults:
    """The catalogue: each injects a real fault into a container, holds it for
    `seconds`, and heals it."""

    def __init__(self, stack: Stack):
        self.stack = stack

    def worker_sigkill(self, seconds: float) -> None:
        docker("kill", "-s", "KILL", self.stack.container("worker"))
        time.sleep(seconds)
        self.stack.compose("start", "worker")

    def redis_restart(self, seconds: float) -> None:
        self.stack.compose("stop", "redis")
        time.sleep(seconds)
        self.stack.compose("start", "redis")

    def postgres_restart(self, seconds: float) -> None:
        self.stack.compose("stop", "db")
        time.sleep(seconds)
        self.stack.compose("start", "db")

    def beat_sigstop(self, seconds: float) -> None:
        docker("kill", "-s", "STOP", self.stack.container("beat"))
        time.sleep(seconds)
        docker("kill", "-s", "CONT", self.stack.container("beat"))

    def beat_cut_off(self, seconds: float) -> None:
        network = f"{PROJECT}_default"
        docker("network", "disconnect", network, self.stack.container("beat"))
        time.sleep(seconds)
        docker("network", "connect", "--alias", "beat", network, self.stack.container("beat"))

    def worker_scaled_down_and_up(self, seconds: float) -> None:
        self.stack.compose("up", "-d", "--no-recreate", "--scale", "worker=1", "worker")
        time.sleep(seconds)
        self.stack.compose("up", "-d", "--no-recreate", "--scale", "worker=2", "worker")


NAMES = (
    "worker_sigkill",
    "redis_restart",
    "postgres_restart",
    "beat_sigstop",
    "beat_cut_off",
    "worker_scaled_down_and_up",
)
# Faults during which beat may send nothing: a gap in its sends then is no skip.
HOLD_BEAT = ("redis_restart", "beat_sigstop", "beat_cut_off")


def plan(seed: int, duration: float) -> list[dict]:
    """The faults, their start (seconds into the run) and how long each holds:
    one per MEAN_FAULT_GAP on average, at uniformly random times, none in the
    first 10 s or the last minute; two may overlap."""
    chooser = random.Random(seed)  # noqa: S311 - a reproducible plan, not a secret
    count = max(1, round((duration - 70) / MEAN_FAULT_GAP))
    starts = sorted(chooser.uniform(10, max(11.0, duration - 60)) for _ in range(count))
    return [
        {"at": round(at, 1), "fault": chooser.choice(NAMES), "hold": round(chooser.uniform(3, 25), 1)} for at in starts
    ]


def cgroup_figures(container) -> dict | None:
    """RSS (anonymous memory: not the page cache, nor PostgreSQL's shared
    buffers, which fill to their size and stay) and CPU, from the cgroup;
    None if the container went away meanwhile (a fault)."""
    try:
        stats = container.stats(stream=False)
    except APIError:
        return None
    memory = stats["memory_stats"].get("stats", {})
    rss = memory.get("anon", memory.get("total_rss", 0))  # cgroup v2, v1
    cpu, before = stats["cpu_stats"], stats["precpu_stats"]
    used = cpu["cpu_usage"]["total_usage"] - before["cpu_usage"]["total_usage"]
    elapsed = cpu.get("system_cpu_usage", 0) - before.get("system_cpu_usage", 0)
    share = used / elapsed * cpu.get("online_cpus", 1) * 100 if elapsed > 0 else 0.0
    return {"rss_mb": round(rss / 1e6, 1), "cpu_percent": round(share, 1)}


def sample(stack: Stack, started: float, engine: DockerClient) -> dict:
    # The services' containers, not the load's one-off container.
    labels = [f"com.docker.compose.project={PROJECT}", "com.docker.compose.oneoff=False"]
    running = engine.containers.list(filters={"label": labels})
    # Docker takes about a second per container to read its stats: all at once.
    with ThreadPoolExecutor(max_workers=max(len(running), 1)) as pool:
        figures = dict(zip((container.name for container in running), pool.map(cgroup_figures, running), strict=True))
    containers = {name: sampled for name, sampled in figures.items() if sampled is not None}
    try:
        outbox = stack.outbox()
    except AssertionError:  # PostgreSQL is down: a fault of the run
        outbox = {"processed": None, "pending": None, "processing": None}
    queued = stack.exec("redis", "redis-cli", "LLEN", "outbox", check=False).stdout.strip()
    record = json.loads(stack.exec("beat", "python", "-c", READ_BEAT_RECORD, check=False).stdout or "{}")
    return {
        "t": round(time.monotonic() - started, 1),
        "containers": containers,
        "processed": outbox["processed"],
        "pending": outbox["pending"],
        "processing": outbox["processing"],
        "queue_depth": int(queued) if queued.isdigit() else None,
        "beat_last_send": record.get("entries", {}).get("process-outbox-events", {}).get("sent_at"),
    }


def memory_growth(samples: list[dict]) -> dict[str, float]:
    """MB/hour per service: the slope of a linear fit over each container's
    samples after its first minute; the steepest container of a service counts."""
    series = {}
    for point in samples:
        for name, figures in point["containers"].items():
            series.setdefault(name, []).append((point["t"], figures["rss_mb"]))
    growth = {}
    for name, points in series.items():
        settled = [(t, mb) for t, mb in points if t - points[0][0] >= WARM_UP]
        if len(settled) >= 6:
            slope = numpy.polyfit([t / 3600 for t, _ in settled], [mb for _, mb in settled], 1)[0]
            service = name.removeprefix(f"{PROJECT}-").rstrip("-0123456789") or name
            growth[service] = max(growth.get(service, float("-inf")), round(float(slope), 1))
    return growth


def skipped_runs(sends: list[datetime], begun: datetime, timeline: list[dict]) -> list[str]:
    """Gaps between beat's sends of the sweep longer than two intervals that
    no fault holding beat explains (it sends the missed run once it is back)."""
    if not sends:
        return ["beat's log shows no sweep sent"]
    held = [(entry["at"] - 5, entry["at"] + entry["hold"] + 30) for entry in timeline if entry["fault"] in HOLD_BEAT]
    unexplained = []
    for earlier, later in itertools.pairwise(sends):
        start, end = ((moment - begun).total_seconds() for moment in (earlier, later))
        if end - start > 2 * INTERVAL + 1 and not any(a <= end and start <= b for a, b in held):
            unexplained.append(f"no sweep sent from {earlier:%H:%M:%S} to {later:%H:%M:%S}")
    return unexplained


def never_injected(injected: list[dict]) -> list[str]:
    """Kinds of fault whose every injection failed: a broken injector, not
    an overlap with another fault (a worker already killed, say)."""
    errors = {entry["fault"]: entry["error"] for entry in injected if "error" in entry}
    worked = {entry["fault"] for entry in injected if "error" not in entry}
    return [f"{fault} was never injected: {error}" for fault, error in sorted(errors.items()) if fault not in worked]


def chart(samples: list[dict], timeline: list[dict], path) -> None:
    figure, (rate, backlog, memory) = pyplot.subplots(3, 1, figsize=(10, 8), sharex=True)
    times = [point["t"] / 60 for point in samples]
    processed = [point["processed"] for point in samples]
    rates = [(b - a) / SAMPLE_EVERY if None not in (a, b) else None for a, b in itertools.pairwise(processed)]
    rate.plot(times[1:], [numpy.nan if r is None else r for r in rates])
    rate.set_ylabel("processed/s")
    backlog.plot(times, [(p["pending"] or 0) + (p["processing"] or 0) for p in samples], label="outbox backlog")
    backlog.plot(times, [point["queue_depth"] or 0 for point in samples], label="Redis queue")
    backlog.set_ylabel("events")
    backlog.legend(loc="upper right")
    services = sorted({name for point in samples for name in point["containers"]})
    for name in services:
        points = [(p["t"] / 60, p["containers"][name]["rss_mb"]) for p in samples if name in p["containers"]]
        memory.plot(*zip(*points, strict=True), label=name.removeprefix(f"{PROJECT}-"))
    memory.set_ylabel("RSS (MB)")
    memory.set_xlabel("minutes")
    memory.legend(loc="upper left", fontsize="small", ncol=3)
    for axes in (rate, backlog, memory):
        for entry in timeline:
            axes.axvspan(entry["at"] / 60, (entry["at"] + entry["hold"]) / 60, color="red", alpha=0.12)
    rate.set_title(f"{PACKAGE}: soak at {RATE:.0f} orders/s, faults shaded")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    duration = parse_duration(os.environ.get("DURATION", "30m"))
    seed = int(os.environ.get("SEED") or random.SystemRandom().randrange(1, 10**6))
    timeline = plan(seed, duration)
    print(f"soak: {duration:.0f} s at {RATE:.0f}/s, SEED={seed}, {len(timeline)} faults planned", flush=True)
    stack = Stack(PROJECT)
    stack.remove()
    try:
        stack.compose("up", "-d", "--build", "--scale", "worker=2")
        stack.wait_healthy()
        result = run(stack, duration, seed, timeline)
    except BaseException:
        print(stack.compose("logs", "--no-color", "--timestamps", "--tail", "200", check=False).stdout)
        raise
    finally:
        stack.remove()
    (ROOT / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result["samples"], timeline, ROOT / "soak.png")
    totals = result["totals"]
    print(f"soak: {totals}")
    print(f"soak: memory growth MB/hour: {result['memory_growth_mb_per_hour']}")
    print(f"soak: problems: {result['problems'] or 'none'}")
    print("Wrote soak.json and soak.png.")
    return 1 if result["problems"] else 0


def run(stack: Stack, duration: float, seed: int, timeline: list[dict]) -> dict:
    count = round(RATE * duration)
    begun, started = datetime.now(UTC), time.monotonic()
{%- if cookiecutter.web == 'fastapi' %}
    target = "http://api:8000/orders"
{%- else %}
    target = "database"
{%- endif %}
    load_command = ["python", "-c", ORDER_LOAD, str(count), str(RATE), target]
    load = subprocess.Popen(
        [*COMPOSE, "run", "--rm", "--no-deps", "-T", "worker", *load_command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    faults, injected = Faults(stack), []
    for entry in timeline:
        threading.Timer(entry["at"], inject, (faults, entry, injected)).start()
    samples, engine = [], DockerClient.from_env()
    while load.poll() is None or time.monotonic() - started < duration:
        samples.append(sample(stack, started, engine))
        time.sleep(max(0.0, started + len(samples) * SAMPLE_EVERY - time.monotonic()))
    output, errors = load.communicate()
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.join()
    stack.compose("up", "-d", "--scale", "worker=2")
    stack.wait_healthy()
    settled = stack.settle(emitted=int(stack.psql("SELECT count(*) FROM outbox_events")), timeout=300)
    written = int(output.split()[-1]) if load.returncode == 0 and output.split() else 0
    orders = int(stack.psql("SELECT count(*) FROM orders"))
    confirmations = "SELECT count(*) FROM order_confirmations c WHERE c.order_id = o.id"
    not_once = int(stack.psql(f"SELECT count(*) FROM orders o WHERE ({confirmations}) <> 1"))  # noqa: S608
    growth = memory_growth(samples)
    problems = [f"the load failed: {errors[-2000:]}"] if load.returncode else []
    problems += [f"{written - orders} acknowledged orders missing"] if orders < written else []
    problems += [f"{not_once} orders not confirmed exactly once"] if not_once else []
    sends = sweep_sends(stack.raw_logs("beat"), begun)
    problems += skipped_runs(sends, begun, injected)
    problems += never_injected(injected)
    if duration >= JUDGE_GROWTH_FROM:
        problems += [f"{name} grew {mb} MB/hour" for name, mb in growth.items() if mb > MAX_GROWTH]
    return {
        "seed": seed,
        "duration_s": duration,
        "rate": RATE,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "compose": " ".join(COMPOSE)},
        "date": begun.isoformat(timespec="seconds"),
        "faults": injected,
        "totals": {
            "orders_acknowledged": written,
            "orders": orders,
            "not_confirmed_once": not_once,
            "sweeps_sent": len(sends),
            "settle_s": settled,
        },
        "memory_growth_mb_per_hour": growth,
        "max_growth_mb_per_hour": MAX_GROWTH,
        "problems": problems,
        "samples": samples,
    }


def inject(faults: Faults, entry: dict, injected: list) -> None:
    print(f"soak: {entry['at']:>7.1f} s  {entry['fault']} for {entry['hold']:.0f} s", flush=True)
    try:
        getattr(faults, entry["fault"])(entry["hold"])
        injected.append(entry)
    except AssertionError as error:
        injected.append({**entry, "error": str(error)[-500:]})


if __name__ == "__main__":
    sys.exit(main())
