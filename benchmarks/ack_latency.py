"""Slash-command ack latency: signed HTTP requests to the real app on its real listener (127.0.0.1).

    python -m benchmarks.ack_latency [--quick]

Three processes, all on loopback:

- this one serves the bot exactly as ``ecs-exec-bot serve`` does (``handlers.server.runtime.serve``: Bolt
  ``AsyncApp``, the aiohttp listener, SQLite store, auditor, limits, redaction) with a fast in-process
  exec backend, so what is measured is the ack path and the post-ack work competing with it, not AWS;
- a FakeSlack process (``--serve-fake-slack``) answers ``auth.test``, ``chat.postMessage`` /
  ``chat.update`` and the ``response_url`` posts of the post-ack jobs, as Slack would from elsewhere;
- a load-generator process (``--load``) sends signed ``/ecs-exec`` commands from C concurrent workers
  and reports each request's round trip: over keep-alive connections, or (``sustained50``) a new TCP
  connection per request, as Slack's own requests arrive.

Figures: p50/p99 of the HTTP round trip (request sent → ack received) at 1 and 50 concurrent, and for
``sustained50`` (50 senders back to back for 10 s, new connections) also acks per second, refusals by
cause (the bot's own "store is busy", "at capacity"), and how long the acked commands took to complete
after the load stopped; per level, the app's CPU per command and its full garbage collections (count, total
and longest pause: each one stops every ack in flight). Bounded: a count and a time limit per level.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIGNING_SECRET = "bench-signing-secret"
USERS = [f"U0LOAD{n:03d}" for n in range(64)]


def bench_config(users: list[str], argv: list[list[str]], timeout: int) -> str:
    """The benchmarks' config file: one service, one rule letting ``users`` run ``argv`` patterns there."""
    commands = "\n".join(f"        - argv: {json.dumps(a)}" for a in argv)
    return f"""
environments:
  prod: {{region: us-east-1}}
services:
  web: {{environment: prod, cluster: prod, service: web-nginx, container: nginx, timeout: {timeout}}}
policy:
  rules:
    - name: load
      users: [{", ".join(users)}]
      services: [web]
      commands:
{commands}
      timeout: {timeout}
"""


CONFIG = bench_config(USERS, [["echo", "**"], ["tail", "-n", "*", "/var/log/nginx/*"]], 30)


# ----------------------------------------------------------------------------------- load generator


async def generate_load(
    url: str, concurrency: int, count: int, time_limit: float, response_url: str, new_connections: bool = False
) -> dict[str, Any]:
    import aiohttp

    from tests.support.slack_requests import command_body, sign

    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + time_limit
    remaining = [count]

    async def worker(n: int, session: aiohttp.ClientSession) -> None:
        user = USERS[n % len(USERS)]
        while remaining[0] > 0 and time.monotonic() < deadline:
            remaining[0] -= 1
            # trigger_id is the dedupe key: unique across the load processes, as Slack's are.
            trigger = f"{os.getpid()}.{n}.{time.time_ns()}"
            body = command_body(f"web echo load-{n}-{remaining[0]}", user_id=user, response_url=response_url,
                                trigger_id=trigger)
            signed = sign(SIGNING_SECRET, body)
            started = time.perf_counter()
            async with session.post(f"{url}/slack/events", data=body.encode(), headers=signed.headers) as resp:
                text = await resp.text()
            latencies.append((time.perf_counter() - started) * 1000)
            if resp.status != 200 or not ("Running" in text or "Queued" in text):
                errors.append(f"{resp.status} {text[:120]}")

    # force_close: a new TCP connection per request, as Slack's deliveries arrive.
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=new_connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(n, session) for n in range(concurrency)))
        wall = time.perf_counter() - started
    return {"latencies_ms": latencies, "errors": errors, "wall_s": wall}


# ----------------------------------------------------------------------------------------- the app


class FastBackend:
    """`bot.runs.backend.ExecBackend` answering at once: the benchmark measures the ack, not ECS."""

    async def resolve(self, service: Any, *, task: str | None, container: str | None, all_tasks: bool,
                      requester: str) -> list[Any]:
        from bot.targets import Target

        # One task per requester, so the per-task concurrency limit does not refuse the load's runs.
        task_id = f"{abs(hash(requester)) % 10**32:032d}"
        return [Target(service.environment, service.cluster, service.service,
                       f"arn:aws:ecs:us-east-1:111122223333:task/prod/{task_id}", task_id,
                       service.container or "app", None, True)]

    async def run(self, target: Any, command: str, *, timeout: float, requester: str,  # noqa: ASYNC109
                  cancel: asyncio.Event | None, on_started: Any, on_progress: Any = None) -> Any:
        from bot.output.capture import CapturedOutput
        from bot.runner import ExecResult

        if on_started is not None:
            await on_started("bench-session")
        output = command.removeprefix("echo ").encode() + b"\r\n"
        return ExecResult(target, command, 0, "ok", 0.001, CapturedOutput.from_bytes(output), "bench-session")

    async def terminate_session(self, environment: str, session_id: str, *, requester: str) -> None:
        return None  # sessions here end on their own

    async def doctor(self, service_alias: str, *, task: str | None, requester: str) -> Any:
        raise NotImplementedError("not measured")


def start_fake_slack() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.ack_latency", "--serve-fake-slack"],
        # stderr: the stdlib server prints a traceback when a client hangs up at shutdown.
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"FakeSlack did not start (printed {url!r})")
    return proc, url


def serve_fake_slack() -> int:
    """Child process: FakeSlack until stdin closes; then how many results the post-ack jobs posted."""
    from tests.support.fake_slack import FakeSlack

    with FakeSlack() as fake:
        print(fake.url, flush=True)
        sys.stdin.read()
        # A successful command never posts to its response_url; every post there reported a failure.
        failures = [c.body.decode("utf-8", "replace")[:200] for c in fake.calls("/response/")]
        print(json.dumps({"updates": len(fake.calls("chat.update")), "failures": failures}), flush=True)
    return 0


async def run_level(
    app_url: str, concurrency: int, count: int, time_limit: float, response_url: str, new_connections: bool = False
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.ack_latency", "--load", app_url, "--concurrency", str(concurrency),
        "--count", str(count), "--time-limit", str(time_limit), "--response-url", response_url,
        *(["--new-connections"] if new_connections else []),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the load generator failed (exit {proc.returncode})")
    return json.loads(out)


@dataclass(frozen=True)
class Level:
    """``rounds`` × (``concurrency`` workers sending ``count`` requests in all); the post-ack work of a
    round finishes before the next round starts."""

    name: str  # the key suffix: c1, c50, burst50, sustained50
    concurrency: int
    count: int
    rounds: int = 1
    new_connections: bool = False
    seconds: float | None = None  # a sustained level: as many requests as fit in this time


async def bench(levels: list[Level], time_limit: float, fake_url: str, workdir: Path) -> list[dict[str, Any]]:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.config import parse_config
    from bot.runs.limits import RunLimiter, RunLimits
    from bot.services import Services, build_services
    from bot.store.sqlite import SqliteStore
    from handlers.app import SlackSettings
    from handlers.server.runtime import RunningBot, ServeOptions, serve
    from handlers.usergroups import UserGroupCache

    config = parse_config(CONFIG, source="bench.yaml")
    # Generous limits: the load is a few users hammering the bot, which the real limits would refuse.
    limits = RunLimits(max_concurrent_per_user=100, max_runs_per_minute_per_user=1000, max_concurrent_per_task=100)

    async def services(client: AsyncWebClient, info: dict[str, Any]) -> Services:
        store = SqliteStore(workdir / "bench.db")
        return build_services(
            config, store, FastBackend(), UserGroupCache(client), limiter=RunLimiter(store, limits),
            bot_user_id=str(info.get("user_id")),
        )

    slack = SlackSettings(bot_token="xoxb-test-token", signing_secret=SIGNING_SECRET, app_token=None,
                          api_url=f"{fake_url}/api/")
    ready: asyncio.Future[RunningBot] = asyncio.get_running_loop().create_future()
    served = asyncio.create_task(serve(slack, services, ServeOptions(host="127.0.0.1", port=0),
                                       on_ready=ready.set_result, install_signal_handlers=False))
    await asyncio.wait({ready, served}, return_when=asyncio.FIRST_COMPLETED)
    if served.done():
        served.result()
    running = ready.result()

    async def settle() -> None:
        # Every ack of the round is in, so every job has started: wait for them to end.
        pending = {job.finished for job in running.services.jobs.running()}
        if pending:
            await asyncio.wait(pending, timeout=time_limit)

    results = []
    try:
        await run_level(running.url, 4, 20, time_limit, f"{fake_url}/response/warmup")  # imports, caches
        await settle()
        for level in levels:
            merged: dict[str, Any] = {"latencies_ms": [], "errors": [], "wall_s": 0.0}
            pauses = _FullCollections()
            gc.callbacks.append(pauses)
            cpu = time.process_time()
            merged["drain_s"] = 0.0
            for _ in range(level.rounds):
                got = await run_level(running.url, level.concurrency, level.count, level.seconds or time_limit,
                                      f"{fake_url}/response/{level.name}", level.new_connections)
                merged["wall_s"] += got["wall_s"]
                merged["latencies_ms"] += got["latencies_ms"]
                merged["errors"] += got["errors"]
                drain_started = time.perf_counter()
                await settle()
                merged["drain_s"] += time.perf_counter() - drain_started
            # The app's CPU per command: the ack and all its post-ack work (this process serves only the bot).
            merged["cpu_ms"] = (time.process_time() - cpu) * 1000 / max(1, len(merged["latencies_ms"]))
            gc.callbacks.remove(pauses)
            merged["full_gc_ms"] = pauses.pauses_ms
            results.append(merged)
            for error in merged["errors"][:3]:
                print(f"{level.name} error: {error}", file=sys.stderr)
    finally:
        running.stop.set()
        await served
    return results


class _FullCollections:
    """A ``gc.callbacks`` probe: how long each full (generation 2) collection stopped the app's loop."""

    def __init__(self) -> None:
        self.pauses_ms: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses_ms.append((time.perf_counter() - self._started) * 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ack_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few requests per level (smoke run)")
    parser.add_argument("--serve-fake-slack", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="APP_URL", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--time-limit", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--response-url", default="http://127.0.0.1:9/response/none", help=argparse.SUPPRESS)
    parser.add_argument("--new-connections", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake_slack:
        return serve_fake_slack()
    if args.load:
        result = asyncio.run(generate_load(args.load, args.concurrency, args.count, args.time_limit,
                                           args.response_url, args.new_connections))
        print(json.dumps(result))
        return 0

    logging.basicConfig(level=logging.CRITICAL)  # the bot logs a line per request; figures only here
    levels = (
        [Level("c1", 1, 10), Level("c50", 50, 100), Level("burst50", 50, 50, rounds=2),
         Level("sustained50", 50, 10**6, new_connections=True, seconds=2.0)]
        if args.quick
        else [Level("c1", 1, 300), Level("c50", 50, 2000), Level("burst50", 50, 50, rounds=10),
              Level("sustained50", 50, 10**6, new_connections=True, seconds=10.0)]
    )
    fake, fake_url = start_fake_slack()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = asyncio.run(bench(levels, 20.0 if args.quick else 60.0, fake_url, Path(tmp)))
    finally:
        assert fake.stdin is not None and fake.stdout is not None
        fake.stdin.close()
        counts = json.loads(fake.stdout.readline() or "{}")
        fake.wait(timeout=10)
    for level, result in zip(levels, results, strict=True):
        latencies = result["latencies_ms"]
        print(f"ack_requests_{level.name}: {len(latencies)}")
        print(f"ack_errors_{level.name}: {len(result['errors'])}")
        print(f"ack_p50_ms_{level.name}: {statistics.median(latencies):.1f}")
        print(f"ack_p99_ms_{level.name}: {percentile(latencies, 0.99):.1f}")
        print(f"app_cpu_ms_per_command_{level.name}: {result['cpu_ms']:.1f}")
        full_gc = result["full_gc_ms"]
        print(f"app_full_gc_count_{level.name}: {len(full_gc)}")
        print(f"app_full_gc_ms_total_{level.name}: {sum(full_gc):.0f}")
        print(f"app_full_gc_ms_longest_{level.name}: {max(full_gc, default=0):.0f}")
        if level.seconds is not None:
            errors = result["errors"]
            print(f"acks_per_s_{level.name}: {len(latencies) / max(result['wall_s'], 1e-9):.0f}")
            print(f"refused_store_busy_{level.name}: {sum('store is busy' in e for e in errors)}")
            print(f"refused_at_capacity_{level.name}: {sum('at capacity' in e for e in errors)}")
            acked = len(latencies) - len(errors)
            print(f"commands_completed_{level.name}: {acked}")
            print(f"completion_s_after_load_{level.name}: {result['drain_s']:.1f}")
    # Each acked command's job replaced its "running…" message with the result: the work after the
    # ack really happened alongside the measured acks (warm-up included).
    print(f"ack_results_posted: {counts.get('updates', 0)}")
    failures = counts.get("failures", [])
    print(f"ack_post_ack_failures: {len(failures)}")
    for failure in failures[:3]:
        print(f"post-ack failure: {failure}", file=sys.stderr)
    print(f"ack_cpus: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
