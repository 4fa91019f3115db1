"""`ecs-exec-bot doctor SERVICE [--task T]`: the ECS Exec checklist for a service, each item with its fix.

Exit status 0 when nothing is red, 1 when ECS Exec cannot work as configured (like a failing check),
and the usual ``BotError`` statuses when the service itself cannot be found or read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.aws import AwsClientFactory
from bot.cli.exec import load_optional_config
from bot.config import load_settings
from bot.doctor_fetch import doctor_report

CHECKS_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE", help="catalogue alias, or with --cluster a raw ECS service name")
    parser.add_argument("--cluster", help="ECS cluster (makes SERVICE a raw ECS service name)")
    parser.add_argument("--task", help="check this task (id or ARN) instead of the first running one")
    parser.add_argument("--container", help="check only this container")
    parser.add_argument("--config", type=Path, help="catalogue/policy YAML (default: $ECS_EXEC_BOT_CONFIG)")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    config = load_optional_config(args.config)
    factory = AwsClientFactory(config.environments if config else None, default_region=load_settings().aws_region)
    report = await doctor_report(config, factory, args.service, cluster=args.cluster, task=args.task,
                                 container=args.container)
    sys.stdout.write(report.render_text())
    return 0 if report.ok else CHECKS_FAILED
