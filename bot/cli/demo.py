"""`ecs-exec-bot demo`: the offline demo (the README's first command).

Starts the stand-ins (ECS API, agent, Slack Web API) and the real bot on 127.0.0.1, plays the tour
(or, with ``--interactive``, reads ``/ecs-exec`` lines), prints the channel as a terminal transcript,
then stops everything and removes its temp dir — on Ctrl-C too. See docs/demo.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from bot.errors import ConfigError

if TYPE_CHECKING:
    from standins.demo.printer import Printer

LOG_FORMAT = "demo: %(levelname)s %(name)s: %(message)s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interactive",
        action="store_true",
        help="type /ecs-exec lines yourself (:as USER to switch users, :approve/:deny to click, :quit)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the transcript: auto = only on a terminal, and never with NO_COLOR set (default)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="print long code blocks in full (by default they are folded, as Slack folds long messages)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the bot's own log lines on stderr")


def _require_stand_ins() -> None:
    """The demo plays against the stand-ins, a separate package the bot's wheel and image do not carry."""
    try:
        import standins.demo  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in ("standins", "standins.demo", "moto"):
            raise
        raise ConfigError(
            "The demo needs the local stand-ins (fake ECS, agent and Slack), which are not installed.",
            fix="Run `make demo` from a checkout of the repository, or `pip install -e ./stand-ins` there.",
        ) from None


def run(args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    _require_stand_ins()
    from standins.demo.printer import Printer
    from standins.demo.transcript import style_for

    out = stdout or sys.stdout
    style = style_for(out)
    if args.color != "auto":
        style = dataclasses.replace(style, color=args.color == "always")
    if args.full:
        style = dataclasses.replace(style, fold_code_lines=0)
    printer = Printer(out, style)
    started = time.monotonic()
    with _demo_logging(verbose=args.verbose):
        try:
            asyncio.run(_main(printer, interactive=args.interactive, stdin=stdin or sys.stdin))
        except KeyboardInterrupt:  # Ctrl-C: asyncio.run cancelled the demo, which cleaned up
            printer.note("Interrupted: every stand-in is stopped and the temp dir removed.")
            return 130
        except asyncio.CancelledError:  # SIGTERM (see _sigterm_cancels_main_task)
            printer.note("Terminated: every stand-in is stopped and the temp dir removed.")
            return 143
        except BrokenPipeError:  # `ecs-exec-bot demo | head`: the reader left; everything was cleaned up
            _silence(out)
            return 141
    from standins.demo.printer import outro_lines

    printer.lines(outro_lines(style, elapsed_s=time.monotonic() - started, interactive=args.interactive))
    return 0


async def _main(printer: Printer, *, interactive: bool, stdin: TextIO) -> None:
    from standins.demo import interactive as interactive_mode
    from standins.demo import tour
    from standins.demo.printer import intro_lines
    from standins.demo.session import CHANNEL, USERS, DemoSession
    from standins.demo.stand_ins import CONFIG_PATH

    printer.note("Starting the local stand-ins and the bot…")
    with _sigterm_cancels_main_task():
        async with DemoSession.running_demo() as session:
            config = session.running.services.config
            catalogue = {
                alias: f"{config.cluster_name_of(svc)}/{svc.service} ({config.environment_of(svc)})"
                for alias, svc in config.services.items()
            }
            printer.lines(
                intro_lines(
                    printer.style,
                    bot_url=session.bot_url,
                    stand_in_urls=session.stand_ins.urls(),
                    clusters=session.stand_ins.clusters,
                    catalogue=catalogue,
                    config_path=str(CONFIG_PATH),
                    users=USERS,
                    channel=CHANNEL.name,
                )
            )
            if interactive:
                await interactive_mode.run(session, printer, stdin)
            else:
                await tour.play(session, printer)


def _silence(stream: TextIO) -> None:
    """Point a closed pipe's descriptor at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


@contextlib.contextmanager
def _sigterm_cancels_main_task() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C does (asyncio.run already maps SIGINT to cancelling the main
    task), so `kill` also stops every stand-in instead of orphaning the ECS child and the agent's PTYs."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@contextlib.contextmanager
def _demo_logging(*, verbose: bool) -> Iterator[None]:
    """The transcript is the demo's output: the bot's own logs go to stderr, warnings and errors only
    unless ``--verbose``. Restores the root logger afterwards (the demo may run inside another program)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    saved = (root.level, list(root.handlers))
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
