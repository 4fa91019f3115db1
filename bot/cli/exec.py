"""`ecs-exec-bot exec SERVICE [options] [--] COMMAND...`: run a command in a task, exit with its exit code.

stdout gets the *whole* cleaned output, streamed as it arrives, in bounded memory (``bot.output.stream``;
``--redact`` adds the config's redaction). With ``--all-tasks`` each task's output is one block under a
``=== task … ===`` header: the first unfinished task streams live, the others are spooled (to disk past
1 MiB) until their turn. stderr gets one line per problem. The exit status is the remote command's
(fan-out: the worst one); failures use the distinct ``BotError.exit_status`` of their family (124 for a
timeout, like timeout(1)); a closed stdout (``| head``) interrupts the remote command and exits 141.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from bot.errors import UsageError

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.runner import ExecResult
    from bot.targets import Target

CANCELLED_STATUS = 130  # like a shell after Ctrl-C
BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE: stdout was closed (`exec … | head`)
CLI_CAPTURE_BYTES = 4096
SPOOL_IN_MEMORY = 1 << 20  # a waiting fan-out task's output goes to a temp file past this
_FIX = "See `ecs-exec-bot exec --help`; put the command after the options, or after `--`."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE",
                        help="catalogue alias, or with --cluster a raw ECS service name")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="[--] COMMAND",
                        help="the command (options may come before it, with or without `--`); one word is "
                             "used verbatim (quote pipes: 'ps aux | grep x'), several are shell-quoted as given")
    _add_options(parser)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", help="ECS cluster (makes SERVICE a raw ECS service name)")
    parser.add_argument("--task", help="task id (or a unique prefix, as Slack shows it) or ARN "
                                       "(default: a running task of the service)")
    parser.add_argument("--container", help="container name (default: catalogue, else the essential one)")
    parser.add_argument("--timeout", help="90, 90s or 5m (default: catalogue or 60 s; at most 1190 s)")
    parser.add_argument("--all-tasks", action="store_true", help="run in every task of the service")
    parser.add_argument("--redact", action="store_true",
                        help="redact secrets in the output with the config's rules (and the built-in ones)")
    parser.add_argument("--config", type=Path, help="catalogue/policy YAML (default: $ECS_EXEC_BOT_CONFIG)")


def _option_table() -> dict[str, bool]:
    """Each option string -> whether it takes a value."""
    probe = argparse.ArgumentParser(add_help=False)
    _add_options(probe)
    return {s: a.nargs != 0 for a in probe._actions for s in a.option_strings}


def split_late_options(args: argparse.Namespace) -> list[str]:
    """Options written after SERVICE land in ``args.command`` (argparse's REMAINDER); take them back.

    Leading words that are options are options, with or without a ``--`` after them; the command starts at
    the first word that is not an option (or after ``--``). A word that looks like an option but is not
    one is a usage error, never the start of a command run somewhere the user did not choose.
    """
    words = list(args.command)
    table = _option_table()
    late: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        name = word.partition("=")[0]
        if name not in table:
            raise UsageError(f"Unknown option {word!r} before the command.", fix=_FIX)
        takes_value = table[name] and "=" not in word
        late += words[i:i + 2] if takes_value else [word]
        i += 2 if takes_value else 1
    if late:
        options = _ParseErrors(prog="ecs-exec-bot exec", add_help=False)
        _add_options(options)
        given = {a.dest for a in options._actions if set(a.option_strings) & {w.partition("=")[0] for w in late}}
        parsed = options.parse_args(late)
        for name in given:
            if getattr(args, name) not in (None, False) and getattr(args, name) != getattr(parsed, name):
                raise UsageError(f"--{name.replace('_', '-')} is given twice.", fix=_FIX)
            setattr(args, name, getattr(parsed, name))
    return words[i:]


class _ParseErrors(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message[:1].upper()}{message[1:]}.", fix=_FIX)


def command_text(words: list[str]) -> str:
    if not words:
        raise UsageError("No command given.", fix="Example: ecs-exec-bot exec web -- cat /etc/os-release")
    from bot.shell_syntax import join_command_words  # the same joining and quoting as Slack's

    return join_command_words(words)


def timeout_seconds(value: str | None) -> int | None:
    """`--timeout` in the forms Slack takes (one parser: ``bot.commands.parse_timeout``)."""
    if value is None:
        return None
    from bot.commands import parse_timeout

    try:
        return parse_timeout(value.strip())
    except UsageError as exc:
        raise UsageError(exc.message.replace("`", "").replace("(e.g.", "(for example"),
                         fix="Use seconds or minutes: --timeout 90, 90s or 5m.") from None


def check_choices(args: argparse.Namespace) -> None:
    from bot.commands import check_task_choice

    try:
        check_task_choice(args.task, args.all_tasks)
    except UsageError as exc:
        raise UsageError(exc.message, fix="Drop one of them.") from None


def load_optional_config(path: Path | None) -> BotConfig | None:
    from bot.config import load_config
    from bot.settings import load_settings

    path = path or load_settings().config_file
    return load_config(path) if path else None


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args, sys.stdout, sys.stderr))


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.aws import AwsClientFactory
    from bot.output.capture import CaptureLimits
    from bot.runner import ExecRunner
    from bot.service_ref import resolve_service_ref
    from bot.settings import load_settings
    from bot.targets import resolve_targets

    command = command_text(split_late_options(args))
    check_choices(args)
    timeout = timeout_seconds(args.timeout)
    config = load_optional_config(args.config)
    redact = _redaction(config) if args.redact else None
    settings = load_settings()
    ref = resolve_service_ref(config, args.service, cluster=args.cluster)
    timeout = timeout if timeout is not None else ref.timeout
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
    writer = BlockWriter(out, targets, header=len(targets) > 1, on_broken=cancel.set)
    # The output goes to stdout as it arrives; the runner's own capture (Slack's head + tail and file)
    # only has to exist, so keep it tiny: memory stays flat whatever the command prints.
    runner = ExecRunner(factory.for_environment, capture_limits=CaptureLimits(
        head_bytes=CLI_CAPTURE_BYTES, tail_bytes=CLI_CAPTURE_BYTES, file_bytes=2 * CLI_CAPTURE_BYTES))
    limit = asyncio.Semaphore(fanout.concurrency if fanout else 4)

    async def one(index: int, target: Target) -> ExecResult:
        from bot.output.stream import OutputStream

        stream = OutputStream(redact)
        async with limit:
            try:
                return await runner.run(target, command, timeout=timeout, requester=requester, cancel=cancel,
                                        on_output=lambda data: writer.write(index, stream.feed(data)))
            finally:
                writer.write(index, stream.flush())
                writer.done(index)

    try:
        results = await asyncio.gather(*(one(i, t) for i, t in enumerate(targets)))
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        writer.close()
    if writer.broken:
        return BROKEN_PIPE_STATUS
    for result in results:
        report_result(result, err)
    return worst_exit_status(results)


def _redaction(config: BotConfig | None) -> Callable[[str], str]:
    from bot.output.redact import Redactor

    policy = config.policy if config else None
    return Redactor(getattr(policy, "redact", ()) or ()).redact


class BlockWriter:
    """Writes each target's text as one block, in target order, streaming the first unfinished one.

    A waiting block is spooled (in memory up to ``SPOOL_IN_MEMORY``, then a temp file), so memory stays
    bounded however much the other tasks print. A closed stdout sets ``broken`` and calls ``on_broken``
    (which interrupts the remote commands) instead of raising inside the data channel.
    """

    def __init__(self, out: TextIO, targets: list[Target], *, header: bool,
                 on_broken: Callable[[], None]) -> None:
        self._out = out
        self._targets = targets
        self._header = header
        self._on_broken = on_broken
        self._spools: dict[int, IO[bytes]] = {}
        self._finished: set[int] = set()
        self._current = 0
        self.broken = False
        self._start(0)

    def write(self, index: int, text: str) -> None:
        if not text or self.broken:
            return
        if index == self._current:
            self._emit(text)
        else:
            spool = self._spools.get(index)
            if spool is None:
                spool = self._spools[index] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
            spool.write(text.encode("utf-8", "surrogateescape"))

    def done(self, index: int) -> None:
        self._finished.add(index)
        while self._current in self._finished and self._current < len(self._targets):
            self._current += 1
            if self._current < len(self._targets):
                self._start(self._current)

    def close(self) -> None:
        for spool in self._spools.values():
            spool.close()
        self._spools.clear()

    def _start(self, index: int) -> None:
        if index >= len(self._targets):
            return
        if self._header:
            t = self._targets[index]
            self._emit(f"=== task {t.task_id} · container {t.container} ===\n")
        spool = self._spools.pop(index, None)
        if spool is not None:
            spool.seek(0)
            while chunk := spool.read(1 << 16):
                self._emit(chunk.decode("utf-8", "surrogateescape"))
            spool.close()

    def _emit(self, text: str) -> None:
        if self.broken:
            return
        try:
            self._out.write(text)
            self._out.flush()
        except BrokenPipeError:
            self.broken = True
            self._on_broken()


def report_result(result: ExecResult, err: TextIO) -> None:
    """What happened besides the output: one stderr line per problem."""
    t = result.target
    if result.missing_messages:
        err.write(f"ecs-exec-bot: task {t.task_id}: output incomplete: {result.missing_messages:,} messages "
                  "were lost in transit.\n")
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
