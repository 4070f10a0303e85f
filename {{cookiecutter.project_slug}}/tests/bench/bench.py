"""`make bench`: the stack's speed, measured on the real stack under its own
Compose project (`{{ cookiecutter.package_name }}_bench`, or BENCH_PROJECT_NAME). Prints one table, and
writes bench.json and bench.png (the latency distribution).

Measures, in this order: the image, `up` to all healthy (images built), idle
CPU and memory over 60 s, the drain rate of a 100k backlog, end-to-end latency
(emit commit to processed) at a steady 200 events/s, beat's dispatch jitter,
a code-only rebuild, {% if cookiecutter.web == 'fastapi' %}the API under wrk (orders/s at
saturation, HTTP latency at 200/s, 201 to confirmed), {% endif %}and in dev mode
the time from saving a task's source to the new code running (10 saves).
PEER=1 adds two peers, pgqueuer and plain Celery, beside this stack's drain
rate and latency (peers.py).
BENCH_BACKLOG, BENCH_RATE, BENCH_LOAD_SECONDS and BENCH_IDLE_SECONDS shorten it.
"""

import itertools
import json
import os
{%- if cookiecutter.web == 'fastapi' %}
import re
{%- endif %}
import shutil
import statistics
{%- if cookiecutter.web == 'fastapi' %}
import subprocess
{%- endif %}
import tempfile
import time
from pathlib import Path

import docker
import matplotlib
from rich.console import Console
from rich.table import Table

from support import COMPOSE, PACKAGE, ROOT, Stack, free_port, wait_for

matplotlib.use("Agg")
from matplotlib import pyplot

PROJECT = os.environ.get("BENCH_PROJECT_NAME", f"{PACKAGE}_bench")
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "100000"))
RATE = float(os.environ.get("BENCH_RATE", "200"))
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "30"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
PEER = os.environ.get("PEER", "") not in ("", "0")
SWEEP = "process-outbox-events"
READ_INTERVAL = f"from {PACKAGE}.settings import get_settings; print(get_settings().outbox_interval_seconds)"
# Goals and the figures measured before the relay work (the README has both).
GOALS = {
    "drain rate": ">= 5,000 events/s",
    "latency p99 at 200/s": "<= 1 s",
    "idle CPU": "<= 3 % of a core",
    "up to healthy": "<= 8 s after up -d",
    "code-only rebuild": "<= 5 s, 1 build",
    "image over its base": "<= 60 MB",
    "edit to running (make dev)": "p50 <= 2 s",
    "peer: pgqueuer": "this stack's drain >= pgqueuer's",
}
RELOADS = 10
{%- if cookiecutter.web == 'fastapi' %}
GOALS.update(
    {
        "API orders/s": ">= 1,500",
        "API HTTP latency at 200/s": "p99 <= 25 ms",
        "API 201 to confirmed": "p99 <= 100 ms",
        "API image growth": "<= 15 MB",
    }
)
POST_ORDER = Path(__file__).with_name("post_order.lua")
# What the API adds to the image: these packages, and nothing else needs them.
API_PACKAGES = "fastapi starlette uvicorn uvloop httptools h11 annotated_doc opentelemetry"
WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
{%- endif %}

os.environ["COMPOSE_PROJECT_NAME"] = PROJECT
os.environ["FLOWER_PORT"] = str(free_port())
os.environ["API_PORT"] = str(free_port())


def seconds_since(start: float) -> float:
    return round(time.monotonic() - start, 2)


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(share * 1000) - 1]


def project_containers(client) -> list:
    return client.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})


def base_image() -> str:
    """PYTHON_IMAGE, as Compose passes it to the build, or the Dockerfile's default."""
    dockerfile = (ROOT / "backend" / "Dockerfile").read_text().splitlines()
    default = next(line.split("=", 1)[1] for line in dockerfile if line.startswith("ARG PYTHON_IMAGE="))
    return os.environ.get("PYTHON_IMAGE") or default


def measure_image(stack: Stack) -> dict:
    images = docker.from_env().images
    size, base = images.get(f"{PROJECT}-backend").attrs["Size"], images.get(base_image()).attrs["Size"]
    return {"image_mb": round(size / 1e6, 1), "base": base_image(), "over_base_mb": round((size - base) / 1e6, 1)}


def measure_up(stack: Stack) -> dict:
    started = time.monotonic()
    stack.compose("up", "-d")
    returned = seconds_since(started)
    stack.wait_healthy()
    healthy = seconds_since(started)
    return {"up_d_returned_s": returned, "all_healthy_s": healthy, "healthy_after_up_d_s": round(healthy - returned, 2)}


def measure_idle(stack: Stack) -> dict:
    """CPU from each container's cumulative cgroup counter, over the window."""
    client = docker.from_env()
    containers = project_containers(client)

    def cpu_ns() -> dict:
        return {c.name: c.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] for c in containers}

    before, started = cpu_ns(), time.monotonic()
    wait_for(lambda: time.monotonic() - started >= IDLE_SECONDS, timeout=IDLE_SECONDS + 5)
    after, elapsed = cpu_ns(), time.monotonic() - started
    per_container = {name: round((after[name] - before[name]) / 1e9 / elapsed * 100, 2) for name in before}
    memory = 0
    for container in containers:
        stats = container.stats(stream=False)["memory_stats"]
        memory += stats["usage"] - stats.get("stats", {}).get("inactive_file", stats.get("stats", {}).get("cache", 0))
    return {
        "idle_cpu_percent": round(sum(per_container.values()), 2),
        "idle_cpu_by_container": per_container,
        "idle_memory_mb": round(memory / 1e6, 1),
        "window_s": round(elapsed, 1),
    }


def clear_outbox(stack: Stack) -> None:
    stack.empty_outbox()


def measure_drain(stack: Stack, backlog: int = BACKLOG) -> dict:
    """A backlog written while the worker is stopped, then drained."""
    clear_outbox(stack)
    stack.compose("stop", "worker")
    stack.compose("run", "--rm", "--no-deps", "worker", "python", "-m", PACKAGE, "emit", "--count", str(backlog))
    started = time.monotonic()
    stack.compose("start", "worker")
    wait_for(lambda: stack.outbox()["processed"] == backlog, timeout=backlog / 100 + 60, interval=1)
    wall = seconds_since(started)
    span = float(stack.psql("SELECT extract(epoch FROM max(processed_at) - min(processed_at)) FROM outbox_events"))
    return {
        "backlog": backlog,
        "drain_events_per_s": round(backlog / span),
        "drain_span_s": round(span, 2),
        "wall_s_including_worker_start": wall,
    }


def measure_latency(stack: Stack) -> tuple[dict, list[float]]:
    """Emit commit to processed, at a steady rate, one transaction per event."""
    clear_outbox(stack)
    count = round(RATE * LOAD_SECONDS)
    stack.exec("worker", "python", "-m", PACKAGE, "emit", "--count", str(count), "--rate", str(RATE))
    wait_for(lambda: stack.outbox()["processed"] == count, timeout=60, interval=1)
    span = float(stack.psql("SELECT extract(epoch FROM max(created_at) - min(created_at)) FROM outbox_events"))
    offered = (count - 1) / span
    rows = stack.psql("SELECT extract(epoch FROM processed_at - created_at) FROM outbox_events").split()
    latencies = sorted(float(row) * 1000 for row in rows)
    figures = {
        "events": count,
        "offered_events_per_s": round(offered),
        "latency_p50_ms": round(percentile(latencies, 0.50), 1),
        "latency_p99_ms": round(percentile(latencies, 0.99), 1),
        "latency_max_ms": round(latencies[-1], 1),
    }
    return figures, latencies


def measure_jitter(stack: Stack) -> dict:
    """How far apart beat's sweeps were from its interval, over the whole run."""
    interval = float(stack.exec("beat", "python", "-c", READ_INTERVAL).stdout)
    sent = [when for when, _, line in stack.logs("beat") if f"Sending due task {SWEEP} " in line]
    jitter = [abs((later - earlier).total_seconds() - interval) * 1000 for earlier, later in itertools.pairwise(sent)]
    return {
        "sends": len(sent),
        "interval_s": interval,
        "jitter_p50_ms": round(percentile(jitter, 0.50), 1),
        "jitter_p99_ms": round(percentile(jitter, 0.99), 1),
    }


def measure_rebuild(stack: Stack) -> dict:
    """A code-only change, built as `make up` would, in a copy of the project."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "project"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "bench.*"))
        module = copy / "backend" / "src" / PACKAGE / "outbox.py"
        module.write_text(module.read_text() + f"\n# bench {time.time()}\n")
        copied = Stack(PROJECT, root=copy)
        started = time.monotonic()
        copied.compose("build")
        took = seconds_since(started)
        # One build per service with a `build:` section (there used to be four).
        builds = copied.compose("config").stdout.count("\n    build:\n")
    return {"code_only_rebuild_s": took, "builds": builds}


def restarted(worker, since: int) -> bool:
    """The worker's last restart since `since` (a Unix time) is done: it is ready."""
    return b" ready." in worker.logs(since=since).rsplit(b"reloader: restarting", 1)[-1]


def measure_reload(stack: Stack) -> dict:
    """Dev mode: from writing tasks.py on the host to the worker importing the
    new code (a line it prints). The file is restored afterwards."""
    stack.compose("up", "-d", files=("compose.yaml", "compose.dev.yaml"))
    stack.wait_healthy()
    worker = docker.from_env().containers.get(stack.container("worker"))
    tasks = ROOT / "backend" / "src" / PACKAGE / "tasks.py"
    original, took = tasks.read_text(), []
    try:
        for number in range(RELOADS):
            marker = f"bench-reload-{number}-{time.time()}"
            since = int(time.time())
            started = time.monotonic()
            tasks.write_text(f"{original}\nprint({marker!r}, flush=True)\n")
            wait_for(lambda m=marker, t=since: m.encode() in worker.logs(since=t), timeout=60, interval=0.02)
            took.append(seconds_since(started))
            # The restart is done when the worker is ready again.
            wait_for(lambda t=since: restarted(worker, t), timeout=60)
    finally:
        tasks.write_text(original)
    return {"saves": RELOADS, "reload_p50_s": statistics.median(took), "reload_max_s": max(took), "each_s": took}


{%- if cookiecutter.web == 'fastapi' %}


def wrk(url: str, seconds: int, connections: int, delay_ms: float) -> dict:
    """wrk's requests/s and latency percentiles (ms) for POST /orders."""
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(POST_ORDER), url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WRK_DELAY_MS": f"{delay_ms:.1f}"},
    )
    percentiles = {
        int(share): round(float(value) * WRK_UNITS[unit], 2)
        for share, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)$", done.stdout, re.MULTILINE)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return {
        "requests_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))),
        "p50_ms": percentiles[50],
        "p99_ms": percentiles[99],
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def measure_api(stack: Stack) -> dict:
    """POST /orders with wrk: at saturation, then paced at RATE; each 201 to
    its confirmation from the database; what FastAPI adds to the image."""
    if not shutil.which("wrk"):
        raise SystemExit("make bench measures the API with wrk: apt-get install wrk")
    url = f"http://127.0.0.1:{stack.api_port}/orders"
    clear_outbox(stack)
    saturated = wrk(url, 15, 32, 0)
    clear_outbox(stack)
    connections = 10
    paced = wrk(url, round(LOAD_SECONDS), connections, 1000 * connections / RATE)
    total = int(stack.psql("SELECT count(*) FROM orders"))
    wait_for(lambda: stack.outbox()["processed"] == total, timeout=120, interval=1)
    rows = stack.psql(
        "SELECT extract(epoch FROM c.confirmed_at - o.created_at) FROM orders o "
        "JOIN order_confirmations c ON c.order_id = o.id"
    ).split()
    confirmed = sorted(float(row) * 1000 for row in rows)
    packages = " ".join(f"{name}*" for name in API_PACKAGES.split())
    sizes = stack.exec("api", "sh", "-c", f"cd /opt/venv/lib/python*/site-packages && du -sck {packages}").stdout
    return {
        "saturation_orders_per_s": saturated["requests_per_s"],
        "saturation_non_2xx": saturated["non_2xx"],
        "paced_requests_per_s": paced["requests_per_s"],
        "http_p50_ms": paced["p50_ms"],
        "http_p99_ms": paced["p99_ms"],
        "confirmed_p50_ms": round(percentile(confirmed, 0.50), 1),
        "confirmed_p99_ms": round(percentile(confirmed, 0.99), 1),
        "image_growth_mb": round(int(sizes.split()[-2]) / 1024, 1),
    }
{%- endif %}


def chart(latencies: list[float], figures: dict, path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(8, 4.5))
    axes.hist(latencies, bins=60, color="#4c72b0")
    for label, value, style in (("p50", figures["latency_p50_ms"], "--"), ("p99", figures["latency_p99_ms"], ":")):
        axes.axvline(value, color="black", linestyle=style, label=f"{label} {value:.0f} ms")
    axes.set_xlabel("emit commit to processed (ms)")
    axes.set_ylabel("events")
    axes.set_title(f"{PACKAGE}: latency of {figures['events']} events at {figures['offered_events_per_s']}/s")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def report(results: dict) -> None:
    table = Table(title=f"make bench ({' '.join(COMPOSE)}, {os.cpu_count()} cores)")
    for column in ("figure", "measured", "goal"):
        table.add_column(column)
    rows = [
        ("drain rate", f"{results['drain']['drain_events_per_s']:,} events/s ({BACKLOG:,} backlog)"),
        (
            "latency p99 at 200/s",
            "p50 {latency_p50_ms} ms, p99 {latency_p99_ms} ms, max {latency_max_ms} ms".format(**results["latency"]),
        ),
        ("beat dispatch jitter", "p50 {jitter_p50_ms} ms, p99 {jitter_p99_ms} ms".format(**results["jitter"])),
        ("up to healthy", "{healthy_after_up_d_s} s after up -d ({all_healthy_s} s in all)".format(**results["up"])),
        ("idle CPU", f"{results['idle']['idle_cpu_percent']} % of a core"),
        ("idle memory", f"{results['idle']['idle_memory_mb']} MB"),
        ("image over its base", "{over_base_mb} MB ({image_mb} MB in all)".format(**results["image"])),
        ("code-only rebuild", "{code_only_rebuild_s} s ({builds} build)".format(**results["rebuild"])),
        (
            "edit to running (make dev)",
            "p50 {reload_p50_s} s, max {reload_max_s} s ({saves} saves)".format(**results["reload"]),
        ),
    ]
{%- if cookiecutter.web == 'fastapi' %}
    api = results["api"]
    rows += [
        ("API orders/s", f"{api['saturation_orders_per_s']:,} orders/s (32 connections)"),
        (
            "API HTTP latency at 200/s",
            f"p50 {api['http_p50_ms']} ms, p99 {api['http_p99_ms']} ms (at {api['paced_requests_per_s']}/s)",
        ),
        ("API 201 to confirmed", f"p50 {api['confirmed_p50_ms']} ms, p99 {api['confirmed_p99_ms']} ms"),
        ("API image growth", f"{api['image_growth_mb']} MB"),
    ]
{%- endif %}
    for name, peer in results.get("peers", {}).items():
        if name in ("pgqueuer", "celery"):
            rows.append(
                (
                    f"peer: {name}",
                    f"{peer['drain_events_per_s']:,} jobs/s at best ({peer['best']}), p99 {peer['latency_p99_ms']} ms;"
                    f" this stack x{peer['this_stack_drain_ratio']} its drain, x{peer['this_stack_p99_ratio']} its p99",
                )
            )
    for figure, measured in rows:
        table.add_row(figure, measured, GOALS.get(figure, ""))
    Console().print(table)


def main() -> int:
    stack = Stack(PROJECT)
    stack.remove()
    results = {}
    try:
        stack.compose("build")
        results["image"] = measure_image(stack)
        results["up"] = measure_up(stack)
        results["idle"] = measure_idle(stack)
        results["drain"] = measure_drain(stack)
        results["latency"], latencies = measure_latency(stack)
        results["jitter"] = measure_jitter(stack)
        results["rebuild"] = measure_rebuild(stack)
{%- if cookiecutter.web == 'fastapi' %}
        results["api"] = measure_api(stack)
{%- endif %}
        if PEER:
            import peers

            ours = measure_drain(stack, peers.JOBS)["drain_events_per_s"]
            latency = results["latency"]["latency_p99_ms"]
            this_stack = {"drain_events_per_s": ours, "latency_p99_ms": latency}
            results["peers"] = peers.measure(stack, this_stack, RATE, LOAD_SECONDS)
        results["reload"] = measure_reload(stack)
    except BaseException:
        print(stack.compose("logs", "--no-color", "--timestamps", check=False).stdout)
        raise
    finally:
        stack.remove()
    results["environment"] = {"compose": " ".join(COMPOSE), "cpus": os.cpu_count(), "base": results["image"]["base"]}
    # `make cluster-test` writes its own section; keep it.
    bench = ROOT / "bench.json"
    if bench.exists() and "cluster" in (earlier := json.loads(bench.read_text())):
        results["cluster"] = earlier["cluster"]
    bench.write_text(json.dumps(results, indent=2) + "\n")
    chart(latencies, results["latency"], ROOT / "bench.png")
    report(results)
    print("Wrote bench.json and bench.png.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
