"""`ecs-exec-bot` command line: one module per subcommand, each with ``add_arguments`` and ``run``.

Subcommand modules are imported only when chosen, so `ecs-exec-bot --help` stays fast and a broken
optional dependency of one subcommand cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from bot import __version__
from bot.errors import BotError

# (name, module, one-line help). `policy` and `audit` have sub-subcommands of their own.
SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    ("serve", "bot.cli.serve", "run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)"),
    ("exec", "bot.cli.exec", "run one command in a task of a service and print its output"),
    ("run", "bot.cli.run", "run a runbook (a vetted bundle of steps) on a service's tasks and print one report"),
    ("doctor", "bot.cli.doctor", "check that ECS Exec can work for a service, with the fix for each problem"),
    ("policy", "bot.cli.policy", "check what the policy decides for a user, channel and command"),
    ("audit", "bot.cli.audit", "list audit records"),
    ("demo", "bot.cli.demo", "offline demo: local ECS, agent and Slack stand-ins with the real bot"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecs-exec-bot",
        description="Run commands in ECS tasks from Slack (or the shell) over ECS Exec.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for name, module_name, help_text in SUBCOMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        module = _load(module_name)
        if module is not None:
            module.add_arguments(p)
    return parser


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "subcommand", None):
        parser.print_help()
        return 0
    module = _load(args._module)
    if module is None:
        print(f"ecs-exec-bot: `{args.subcommand}` is not available in this build.", file=sys.stderr)
        return 70
    try:
        return int(module.run(args) or 0)
    except BotError as exc:
        print(f"ecs-exec-bot: {exc.user_text()}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
