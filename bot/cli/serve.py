"""`ecs-exec-bot serve`: the Slack bot. Socket Mode when SLACK_APP_TOKEN is set, else HTTP on HOST:PORT.

Start-up checks fail with one line and a distinct exit status (78 for configuration), local ones first:
settings, token shapes, the config file; then every environment's region and role (`bot.aws`), then
``auth.test``, the store, the listening port. SIGTERM drains (see `handlers.server.runtime`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.output.redact import RedactingLogFilter

# Fits ECS's default stopTimeout (30 s) with room to cancel and update messages; raise it (with
# stopTimeout, at most 120 s) to let longer commands finish during a deploy.
DEFAULT_DRAIN_GRACE_S = 20.0
DRAIN_GRACE_ENV = "ECS_EXEC_BOT_DRAIN_GRACE"
# chat.update calls per minute that live progress may spend, all running commands together: Slack's Tier 3
# is "50+ per minute" per workspace; 40 leaves room for results and approval cards. Per process: with
# several replicas, divide it among them. 0 turns live progress off.
DEFAULT_LIVE_UPDATES_PER_MINUTE = 40.0

# Log records carry these when a handler passes them in ``extra=``; everything else is the message.
_EXTRA_FIELDS = ("request_id", "user", "channel", "service")


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: what log pipelines (CloudWatch Logs Insights, Loki…) index best."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._redact = redact or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            # Tracebacks quote local values and error texts, which may carry a secret from command output.
            entry["exc"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="HTTP listen address (default: HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="HTTP port (default: PORT or 3000; /healthz in Socket Mode)")
    parser.add_argument(
        "--drain-grace",
        type=float,
        # Read in run(), not here: every subcommand's parser is built from this, and a bad value must fail
        # `serve` alone (as a config error), not `--help` of everything.
        default=None,
        help="seconds running commands may finish after SIGTERM before they are cancelled (env "
        f"ECS_EXEC_BOT_DRAIN_GRACE, default {DEFAULT_DRAIN_GRACE_S:g}); keep it ~25 s below the container's "
        "stopTimeout so cancelled commands can still update their messages",
    )
    parser.add_argument(
        "--live-updates-per-minute",
        type=float,
        default=float(os.environ.get("ECS_EXEC_BOT_LIVE_UPDATES_PER_MINUTE", DEFAULT_LIVE_UPDATES_PER_MINUTE)),
        help="chat.update calls per minute all live progress messages may spend together (env "
        f"ECS_EXEC_BOT_LIVE_UPDATES_PER_MINUTE, default {DEFAULT_LIVE_UPDATES_PER_MINUTE:g}; 0 = off); with "
        "several replicas, divide Slack's ~50/min among them",
    )


def drain_grace(option: float | None, environ: dict[str, str] | os._Environ[str] = os.environ) -> float:
    """--drain-grace, else ECS_EXEC_BOT_DRAIN_GRACE, else the default; a bad value is a ConfigError."""
    if option is not None:
        value, source = option, "--drain-grace"
    elif DRAIN_GRACE_ENV in environ:
        source = DRAIN_GRACE_ENV
        try:
            value = float(environ[DRAIN_GRACE_ENV])
        except ValueError:
            value = math.nan
    else:
        return DEFAULT_DRAIN_GRACE_S
    if not (math.isfinite(value) and 0 <= value <= 3600):
        shown = environ.get(DRAIN_GRACE_ENV) if source == DRAIN_GRACE_ENV else value
        raise ConfigError(f"{source}={shown!s} is not a number of seconds between 0 and 3600.",
                          fix=f"Set it to e.g. {DEFAULT_DRAIN_GRACE_S:g} (keep it ~25 s below the task's stopTimeout).")
    return value


def configure_logging(level: str) -> RedactingLogFilter:
    """JSON lines on stderr, with every message and traceback redacted before it is written.

    Starts with the built-in kinds; the returned filter is switched to the configured redactor (with the
    policy file's own patterns) once the config is loaded."""
    from bot.output.redact import RedactingLogFilter, Redactor

    log_filter = RedactingLogFilter(Redactor())
    handler = logging.StreamHandler()
    handler.addFilter(log_filter)
    handler.setFormatter(JsonLineFormatter(log_filter.redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return log_filter


def run(args: argparse.Namespace) -> int:
    from bot.aws import AwsClientFactory, check_environments
    from bot.config import load_config
    from bot.settings import load_settings
    from handlers.app import SlackSettings, build_slack_services
    from handlers.live import LiveSettings
    from handlers.server.runtime import ServeOptions, serve

    # Local checks first (no network): settings, token shapes, the config file.
    settings = load_settings()
    options = ServeOptions(
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        drain_grace=drain_grace(args.drain_grace),
        live=LiveSettings(
            enabled=args.live_updates_per_minute > 0, updates_per_minute=max(args.live_updates_per_minute, 1.0)
        ),
    )
    log_filter = configure_logging(settings.log_level)
    slack = SlackSettings.from_settings(settings)
    if settings.config_file is not None:  # unset: open_services says so, with the fix
        config = load_config(settings.config_file)
        # Then AWS: every environment's region (and role) now, not as "internal error" on every command.
        check_environments(config, AwsClientFactory(config.environments, default_region=settings.aws_region))

    async def factory(client: Any, info: dict[str, Any]) -> Any:
        services = await build_slack_services(settings, client, info)
        if services.redactor is not None:
            log_filter.use(services.redactor)  # logs now also hide the policy file's own secret shapes
        return services

    report = asyncio.run(serve(slack, factory, options))
    logging.getLogger("ecs_exec_bot.serve").info("stopped: %s", report)
    return 0
