"""`ecs-exec-bot exec SERVICE -- COMMAND...`: run a command in a task and exit with its exit code.

stdout gets the cleaned output (grouped per task under a header line with --all-tasks); stderr gets
one line per problem. The exit status is the remote command's (fan-out: the worst one); failures use
the distinct ``BotError.exit_status`` of their family (124 for a timeout, like timeout(1)).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
import sys
from pathlib import Path
from typing import TextIO

from bot.aws import AwsClientFactory
from bot.commands import join_command_words
from bot.config import MAX_TIMEOUT_S, BotConfig, load_config, load_settings
from bot.errors import UsageError
from bot.runner import ExecResult, ExecRunner
from bot.targets import Target, resolve_service_ref, resolve_targets

CANCELLED_STATUS = 130  # like a shell after Ctrl-C


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE",
                        help="catalogue alias, or with --cluster a raw ECS service name")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                        help="the command; one word is used verbatim (quote pipes: 'ps aux | grep x'), "
                             "several words are shell-quoted as given")
    _add_options(parser)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", help="ECS cluster (makes SERVICE a raw ECS service name)")
    parser.add_argument("--task", help="task id or ARN (default: a running task of the service)")
    parser.add_argument("--container", help="container name (default: catalogue, else the essential one)")
    parser.add_argument("--timeout", type=float, help=f"seconds (default: catalogue or 60; max {MAX_TIMEOUT_S})")
    parser.add_argument("--all-tasks", action="store_true", help="run in every task of the service")
    parser.add_argument("--config", type=Path, help="catalogue/policy YAML (default: $ECS_EXEC_BOT_CONFIG)")


def split_late_options(args: argparse.Namespace) -> list[str]:
    """Options written after SERVICE (`exec web --task T -- cmd`) land in the command; take them back."""
    words = list(args.command)
    if "--" not in words:
        return words
    cut = words.index("--")
    late, words = words[:cut], words[cut + 1:]
    if late:
        options = argparse.ArgumentParser(prog="ecs-exec-bot exec", add_help=False)
        _add_options(options)
        parsed, unknown = options.parse_known_args(late)
        if unknown:
            raise UsageError(f"Unexpected {' '.join(unknown)!r} before `--`.",
                             fix="Put the command after `--`: ecs-exec-bot exec SERVICE [options] -- COMMAND")
        for name, value in vars(parsed).items():
            if value not in (None, False):
                setattr(args, name, value)
    return words


def command_text(words: list[str]) -> str:
    if not words:
        raise UsageError("No command given.", fix="Example: ecs-exec-bot exec web -- cat /etc/os-release")
    return join_command_words(words)


def load_optional_config(path: Path | None) -> BotConfig | None:
    path = path or load_settings().config_file
    return load_config(path) if path else None


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args, sys.stdout, sys.stderr))


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    command = command_text(split_late_options(args))
    config = load_optional_config(args.config)
    settings = load_settings()
    ref = resolve_service_ref(config, args.service, cluster=args.cluster)
    timeout = args.timeout if args.timeout is not None else ref.timeout
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise UsageError(f"--timeout must be between 1 and {MAX_TIMEOUT_S} seconds.",
                         fix="ECS ends idle sessions after 20 minutes; split longer work.")
    factory = AwsClientFactory(config.environments if config else None, default_region=settings.aws_region)
    requester = _local_user()
    clients = await asyncio.to_thread(factory.for_environment, ref.environment, requester)
    fanout = config.fanout if config else None
    targets = await resolve_targets(clients, ref, task=args.task, container=args.container,
                                    all_tasks=args.all_tasks, cap=fanout.max_tasks if fanout else 10)

    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ctrl-C here interrupts the remote command too (Ctrl-C through the PTY, then TerminateSession).
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.set)
    runner = ExecRunner(factory.for_environment)
    limit = asyncio.Semaphore(fanout.concurrency if fanout else 4)

    async def one(target: Target) -> ExecResult:
        async with limit:
            return await runner.run(target, command, timeout=timeout, requester=requester, cancel=cancel)

    try:
        results = await asyncio.gather(*(one(t) for t in targets))
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    for result in results:
        print_result(result, out, err, header=len(results) > 1)
    return worst_exit_status(results)


def print_result(result: ExecResult, out: TextIO, err: TextIO, *, header: bool) -> None:
    t = result.target
    if header:
        code = "?" if result.exit_code is None else str(result.exit_code)
        out.write(f"=== task {t.task_id} · container {t.container} · {result.status} · exit {code} ===\n")
    text = result.text
    out.write(text if not text or text.endswith("\n") else text + "\n")
    out.flush()
    if result.note:
        err.write(f"ecs-exec-bot: task {t.task_id}: note: {result.note}\n")
    if result.error is not None:
        err.write(f"ecs-exec-bot: task {t.task_id}: {result.error.user_text()}\n")
    elif result.status == "cancelled":
        err.write(f"ecs-exec-bot: task {t.task_id}: cancelled; the remote command was interrupted.\n")
    elif result.exit_code is None:
        why = "the container has no shell to report it" if not t.shell else "the command did not report it"
        err.write(f"ecs-exec-bot: task {t.task_id}: exit status unknown ({why}).\n")


def exit_status_of(result: ExecResult) -> int:
    if result.status == "cancelled":
        return CANCELLED_STATUS
    if result.error is not None:
        return result.error.exit_status
    return result.exit_code or 0


def worst_exit_status(results: list[ExecResult]) -> int:
    """Failures of the bot/AWS side first (their own statuses), then the highest remote exit code."""
    rank = {"error": 3, "timeout": 2, "cancelled": 2, "failed": 1, "ok": 0}
    worst = max(results, key=lambda r: (rank[r.status], exit_status_of(r)), default=None)
    return exit_status_of(worst) if worst is not None else 0


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
