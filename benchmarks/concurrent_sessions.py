"""200 concurrent sessions of 100 KiB each through the real runner: ExecuteCommand → data channel → capture.

    python -m benchmarks.concurrent_sessions [--sessions 200] [--kb 100] [--batched] [--quick]

Three processes on loopback, so the figures are the client's alone:

- the local agent (``python -m standins.agent``): the SSM side of every session; each session
  streams ``--kb`` KiB of synthetic numbered lines, paced like the real agent (1 KiB, then 1 ms sleep;
  ``--batched``: as fast as acked), with no process per session: the 2-core machine's CPU goes to the
  client, which is what is measured (with 200 paced sessions the agent itself becomes the limit, so each
  session streams slower than 1 MiB/s);
- the patched moto ECS (``--serve-ecs``, this module): ``ExecuteCommand`` registers each session
  with the agent, exactly as in the tests and the demo;
- this process: ``bot.targets.resolve_targets`` once, then ``bot.runner.ExecRunner.run`` for every
  session at once (boto3 through ``asyncio.to_thread``, the websocket client, the exit-code filter,
  the bounded capture), as the bot does for that many commands.

Figures: ``sessions_wall_s`` (all sessions, start to last end), ``sessions_errors`` (a session that did
not end "ok" with every byte; target 0), ``sessions_resumed`` (sessions whose data channel dropped and
was resumed: they succeed, but on loopback a drop means something reset a connection),
``client_peak_rss_mib`` (peak RSS of this process, boto3 and all; target < 150 MiB), ``client_cpu_s`` and
``client_cpu_ms_per_mib`` (this process's CPU while the sessions run, per MiB of output). Errors are
counted by kind on stderr (``error_kind: <class>: <n>``), with the first five in full.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

KIB = 1024
MIB = 1024 * KIB
PACED_INTERVAL = 0.001  # seconds between 1 KiB messages: the agent's sleep between PTY reads
REGION = "us-east-1"


def start_child(args: list[str], what: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"{what} did not start (printed {url!r})")
    return proc, url


def serve_ecs(agent_url: str, output_bytes: int, interval: float) -> int:
    """Child process: the patched moto ECS with the demo cluster; every session streams synthetic output."""
    from standins.ecs import SANDBOX, LocalEcsServer, seed_demo_cluster

    with LocalEcsServer(agent_url=agent_url) as ecs:
        seed_demo_cluster(ecs.url, region=REGION)
        with SANDBOX.lock:
            SANDBOX.session_options["synthetic_output_bytes"] = output_bytes
            SANDBOX.session_options["synthetic_interval"] = interval
        print(ecs.url, flush=True)
        sys.stdin.read()  # until the parent closes it
    return 0


def point_boto3_at(ecs_url: str, agent_url: str) -> None:
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_ECS": ecs_url, "AWS_ENDPOINT_URL_SSM": agent_url, "AWS_ENDPOINT_URL_KMS": agent_url,
    })


async def run_sessions(count: int, output_bytes: int) -> dict[str, Any]:
    from bot.aws import AwsClientFactory
    from bot.runner import ExecRunner
    from bot.service_ref import ServiceRef
    from bot.targets import resolve_targets

    factory = AwsClientFactory(default_region=REGION)
    clients = await asyncio.to_thread(factory.for_environment, "prod", None)
    ref = ServiceRef(name="web", environment="prod", cluster="prod", service="web-nginx", container="nginx")
    targets = await resolve_targets(clients, ref, all_tasks=True)
    runner = ExecRunner(factory.for_environment)
    # Enough threads that ExecuteCommand calls do not queue behind each other for the whole start-up.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32))

    kinds: Counter[str] = Counter()
    resumed = 0

    async def one(n: int) -> str | None:
        nonlocal resumed
        result = await runner.run(targets[n % len(targets)], f"bench session {n}", timeout=300,
                                  requester="U0BENCH")
        if result.channel is not None and result.channel.resumes:
            resumed += 1
        if result.status != "ok":
            kinds[f"{result.status}: {type(result.error).__name__}"] += 1
            return f"session {n}: {result.status}: {result.error.user_text() if result.error else ''}"
        if result.output.total_bytes != output_bytes:
            kinds["short output"] += 1
            return f"session {n}: {result.output.total_bytes} of {output_bytes} bytes"
        return None

    cpu0, wall0 = time.process_time(), time.perf_counter()
    problems = await asyncio.gather(*(one(n) for n in range(count)), return_exceptions=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    for p in problems:
        if isinstance(p, BaseException):
            kinds[f"raised: {type(p).__name__}"] += 1
    errors = [str(p) for p in problems if p is not None]
    return {"wall_s": wall, "cpu_s": cpu, "errors": errors, "kinds": kinds, "resumed": resumed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.concurrent_sessions",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--kb", type=int, default=100, help="KiB of output per session (default 100)")
    parser.add_argument("--batched", action="store_true", help="output as fast as acked instead of paced")
    parser.add_argument("--quick", action="store_true", help="10 sessions (smoke run)")
    parser.add_argument("--serve-ecs", metavar="AGENT_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    output_bytes = args.kb * KIB
    interval = 0.0 if args.batched else PACED_INTERVAL
    if args.serve_ecs:
        return serve_ecs(args.serve_ecs, output_bytes, interval)
    count = 10 if args.quick else args.sessions

    agent, agent_url = start_child(["standins.agent", "--port", "0"], "the local agent")
    try:
        ecs, ecs_url = start_child(["benchmarks.concurrent_sessions", "--serve-ecs", agent_url,
                                    "--kb", str(args.kb), *(["--batched"] if args.batched else [])],
                                   "the local ECS")
        try:
            point_boto3_at(ecs_url, agent_url)
            result = asyncio.run(run_sessions(count, output_bytes))
        finally:
            assert ecs.stdin is not None
            ecs.stdin.close()
            ecs.wait(timeout=30)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    for kind, n in result["kinds"].most_common():
        print(f"error_kind: {kind}: {n}", file=sys.stderr)
    for error in result["errors"][:5]:
        print(error, file=sys.stderr)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"sessions: {count}")
    print(f"session_output_kib: {args.kb}")
    print(f"paced_interval_ms: {interval * 1000:g}")
    print(f"sessions_wall_s: {result['wall_s']:.1f}")
    print(f"sessions_errors: {len(result['errors'])}")
    print(f"sessions_resumed: {result['resumed']}")
    print(f"client_peak_rss_mib: {peak_rss_mib:.0f}")
    print(f"client_cpu_s: {result['cpu_s']:.1f}")
    print(f"client_cpu_ms_per_mib: {result['cpu_s'] * 1000 / (count * output_bytes / MIB):.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
