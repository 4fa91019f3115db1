"""`ecs-exec-bot run RUNBOOK SERVICE`: run a runbook from the config on the service's tasks, print its report.

stdout gets the task × step table with the tasks that differ from the majority (``--outputs``: then every
step's full output on every task, as the Slack thread's file has it). Like ``exec``, the command line acts
with the caller's own AWS credentials, so the Slack policy does not apply; the runbook's steps, timeouts
and fan-out limits from the config do. Ctrl-C interrupts every running step on every task. The exit status
is the worst step's (see ``exec``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import uuid
from pathlib import Path
from typing import TextIO

from bot.aws import AwsClientFactory
from bot.cli.exec import _local_user, worst_exit_status
from bot.config import load_config
from bot.errors import ConfigError
from bot.output.redact import Redactor
from bot.output.runbook_report import report_file, report_text, report_view
from bot.runbooks import PlannedStep, RunbookPlan, find_runbook
from bot.runs.backend import AwsExecBackend
from bot.runs.fanout import RunEvent
from bot.runs.order import RunOrder
from bot.runs.runbook import run_steps
from bot.service_ref import resolve_service_ref
from bot.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runbook", metavar="RUNBOOK", help="a runbook of the config's `runbooks:` section")
    parser.add_argument("service", metavar="SERVICE", nargs="?",
                        help="catalogue alias (optional when the runbook names one service)")
    parser.add_argument("--outputs", action="store_true", help="also print every step's output on every task")
    parser.add_argument("--config", type=Path, help="catalogue/policy YAML (default: $ECS_EXEC_BOT_CONFIG)")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args, sys.stdout))


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings()
    path = args.config or settings.config_file
    if path is None:
        raise ConfigError("Runbooks live in the config file, and none was given.",
                          fix="Pass --config FILE or set ECS_EXEC_BOT_CONFIG.")
    config = load_config(path)
    book, alias = find_runbook(config.runbooks, args.runbook, args.service)
    ref = resolve_service_ref(config, alias)
    plan = RunbookPlan(
        name=args.runbook,
        steps=tuple(PlannedStep(s.name, s.command, float(s.timeout or ref.timeout), s.extract) for s in book.steps),
        all_tasks=book.tasks == "all",
    )
    requester = _local_user()
    order = RunOrder(request_id=f"cli-{uuid.uuid4().hex[:8]}", requester=requester, channel_id="cli", service=ref,
                     command=plan.describe(), timeout=plan.total_timeout, all_tasks=plan.all_tasks, runbook=plan)
    factory = AwsClientFactory(config.environments, default_region=settings.aws_region)
    backend = AwsExecBackend(config, factory)
    targets = await backend.resolve(ref, task=None, container=None, all_tasks=plan.all_tasks, requester=requester)

    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.set)

    async def quiet(step: RunOrder, event: RunEvent) -> None:
        return None

    try:
        result = await run_steps(backend, order, plan, targets, concurrency=config.fanout.concurrency,
                                 cancel=cancel, emit=quiet)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    # The policy file's extra secret shapes apply here too: the terminal is no place for a token either.
    redactor = Redactor(config.policy.redact) if config.policy is not None else Redactor()
    cancelled = "cancelled (Ctrl-C)" if cancel.is_set() else None
    view = report_view(order, result, redactor, runbook=plan.name, cancel_reason=cancelled)
    if args.outputs:
        out.write(report_file(view, result, redactor)[2].decode())
    else:
        out.write(report_text(view))
    out.flush()
    return worst_exit_status(result.all_results) if result.all_results else 130
