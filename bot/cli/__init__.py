"""`ecs-exec-bot` command line: one module per subcommand, each with ``add_arguments`` and ``run``.

Only the chosen subcommand's module is imported, so `ecs-exec-bot audit` never pays for boto3 or the
data channel, and a broken optional dependency of one subcommand cannot break the others.

Every failure ends in one line on stderr and a distinct exit status (see ``bot.errors``): argparse's
own usage errors become ``UsageError`` (64, not argparse's 2), AWS set-up failures that escape a
subcommand go through ``bot.aws.describe_setup_error``, and a closed stdout (``… | head``) exits 141
quietly, as a shell reports a command killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from bot import __version__
from bot.errors import BotError, UsageError

BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE, what a shell reports for `cmd | head`

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


class UsageErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is a ``UsageError`` (exit 64, one line) instead of exit 2 + usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message[:1].upper()}{message[1:]}.",
                         fix=f"See `{self.prog} --help`.")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand it names gets its arguments (and its import)."""
    parser = UsageErrorParser(
        prog="ecs-exec-bot",
        description="Run commands in ECS tasks from Slack (or the shell) over ECS Exec.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=UsageErrorParser)
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), None)
    for name, module_name, help_text in SUBCOMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        if argv is not None and name != chosen:
            continue
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
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(argv)
    except BrokenPipeError:
        code = BROKEN_PIPE_STATUS
    if code == BROKEN_PIPE_STATUS:
        _silence_stdout()
    return code


def _main(argv: list[str]) -> int:
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "subcommand", None):
            parser.print_help()
            return 0
        module = _load(args._module)
        if module is None:
            print(f"ecs-exec-bot: `{args.subcommand}` is not available in this build.", file=sys.stderr)
            return 70
        return int(module.run(args) or 0)
    except BotError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        failure = _aws_setup_failure(exc)
        if failure is None:
            raise
        return _fail(failure)


def _fail(exc: BotError) -> int:
    print(f"ecs-exec-bot: {exc.user_text()}", file=sys.stderr)
    return exc.exit_status


def _aws_setup_failure(exc: BaseException) -> BotError | None:
    """Last resort for a botocore error no call site mapped (a region or profile problem can surface in
    any client); the mapping itself lives in ``bot.aws`` (imported only when botocore already is)."""
    if not type(exc).__module__.startswith(("botocore.", "boto3.")):
        return None
    from bot.aws import describe_setup_error

    return describe_setup_error(exc)


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again; point it at /dev/null.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
