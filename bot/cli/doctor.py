"""`ecs-exec-bot doctor SERVICE [--task T] [--probe]`: the ECS Exec checklist for a service, each item with
its fix; with ``--probe`` also the live outcome of running `true` through ECS Exec on the task.

Exit status 0 when nothing is red, 1 when ECS Exec cannot work as configured (like a failing check, the
probe included), and the usual ``BotError`` statuses when the service itself cannot be found or read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.cli.exec import load_optional_config

CHECKS_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE", help="catalogue alias, or with --cluster a raw ECS service name")
    parser.add_argument("--cluster", help="ECS cluster (makes SERVICE a raw ECS service name)")
    parser.add_argument("--task", help="check this task (id or ARN) instead of the first running one")
    parser.add_argument("--container", help="check only this container")
    parser.add_argument("--probe", action="store_true",
                        help="also run `true` through ECS Exec on the task and report the live outcome")
    parser.add_argument("--config", type=Path, help="catalogue/policy YAML (default: $ECS_EXEC_BOT_CONFIG)")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from bot.aws import AwsClientFactory
    from bot.doctor_fetch import doctor_report, live_probe
    from bot.settings import load_settings

    config = load_optional_config(args.config)
    factory = AwsClientFactory(config.environments if config else None, default_region=load_settings().aws_region)
    report = await doctor_report(config, factory, args.service, cluster=args.cluster, task=args.task,
                                 container=args.container)
    if args.probe:
        report = report.with_check(await live_probe(config, factory, args.service, cluster=args.cluster,
                                                    task=args.task, container=args.container))
    sys.stdout.write(report.render_text())
    return 0 if report.ok else CHECKS_FAILED
