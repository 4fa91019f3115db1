"""The demo's local ECS API: patched moto in server mode, in a child process, with the demo cluster seeded.

Why a child process: moto keeps its backends (clusters, tasks, IAM roles) in module globals, so two
demos — or a demo inside a test run that also uses moto — in one process would share and collide on
state. A child gets a clean moto every time and takes it all away when it exits.

Protocol with the parent: the parent starts the child first (moto's import and the seeding are the
slowest part of the demo's start-up, so they overlap everything else) and writes the local agent's URL
as the first line of the child's stdin once the agent is up (or passes ``--agent-url``). The child prints
one JSON line (``{"url": ..., "clusters": {...}}``) once it serves and knows the agent, then runs until
its stdin closes (the parent closing the pipe, or the parent dying), so it can never outlive the demo.

    python -m standins.demo.local_ecs [--agent-url http://127.0.0.1:PORT] [--region eu-west-1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from standins.ecs import SANDBOX, LocalEcsServer, ServiceSpec, seed_demo_cluster

# cluster -> services. Service names are the ECS names; the catalogue (demo config) maps aliases to them.
DEMO_CLUSTERS: dict[str, tuple[ServiceSpec, ...]] = {
    "prod": (
        ServiceSpec("web-nginx", containers=("nginx", "log-router"), tasks=2),
        ServiceSpec("worker", containers=("worker",), tasks=1),
    ),
    "staging": (ServiceSpec("api", containers=("app",), tasks=2),),
}


def seed(endpoint_url: str, region: str) -> dict[str, Any]:
    """Seed every demo cluster; returns ``{cluster: {service: {"tasks": [...], "containers": [...]}}}``."""
    out: dict[str, Any] = {}
    for cluster, services in DEMO_CLUSTERS.items():
        seeded = seed_demo_cluster(endpoint_url, region=region, cluster=cluster, services=services)
        out[cluster] = {
            name: {"tasks": list(svc.task_ids), "containers": list(svc.containers)}
            for name, svc in seeded.services.items()
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.demo.local_ecs")
    parser.add_argument("--agent-url", help="the local agent's HTTP URL (default: the first line of stdin)")
    parser.add_argument("--region", default="eu-west-1")
    args = parser.parse_args(argv)
    # The parent owns Ctrl-C; it stops us by closing our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # moto loads thousands of EC2 AMIs per region by default; the demo needs none (saves about a second).
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    server = LocalEcsServer(agent_url=args.agent_url).start()
    clusters = seed(server.url, args.region)
    if not args.agent_url:
        # ExecuteCommand registers sessions with the agent; nothing before it needs the URL.
        SANDBOX.agent_url = sys.stdin.readline().strip() or None
    print(json.dumps({"url": server.url, "clusters": clusters}), flush=True)
    sys.stdin.read()  # until the parent closes the pipe (or dies)
    # Everything this process holds is in memory plus one listening socket, which the kernel closes. A
    # normal exit would spend ~1.5 s stopping werkzeug's poll loop and tearing down moto's object graph.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
