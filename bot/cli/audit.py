"""`ecs-exec-bot audit`: list audit records from the configured store (or prune old ones).

    ecs-exec-bot audit [--since 24h] [--until ...] [--user U…] [--service S] [--request ID]
                       [--json] [--limit N] [--prune-older-than DAYS]

The store is the one the bot uses (ECS_EXEC_BOT_STORE, ECS_EXEC_BOT_SQLITE_PATH /
ECS_EXEC_BOT_DYNAMODB_TABLE). Records are printed oldest first, newest last (the newest ``--limit``).

Never destructive by accident: a missing SQLite file is "No store at PATH" (75), not a new empty database;
``--prune-older-than`` takes a positive number of days (0 means "keep forever" in the retention setting).
Starts light: no pydantic-settings, boto3 or data channel unless the store is DynamoDB.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from bot.errors import UsageError
from bot.store.base import AuditEvent, AuditQuery

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_COMMAND_WIDTH = 48


def parse_time(text: str, now: float) -> float:
    """``24h`` / ``30m`` / ``7d`` (ago) or an ISO date/time (UTC unless it says otherwise) → epoch."""
    text = text.strip()
    if match := _DURATION.match(text):
        return now - float(match[1]) * _UNITS[match[2]]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"Cannot read the time {text!r}.",
            fix="Use a duration such as 30m, 24h or 7d, or a date such as 2026-11-18T10:00.",
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default="24h", help="how far back: 30m, 24h, 7d or an ISO time (default 24h)"
    )
    parser.add_argument("--until", help="end of the window (same formats; default now)")
    parser.add_argument("--user", dest="users", action="extend", nargs="+", default=[], metavar="U…",
                        help="only events by these Slack user ids (requester, approver or canceller)")  # fmt: skip
    parser.add_argument("--service", help="only this service alias")
    parser.add_argument("--request", help="only this request id")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--limit", type=int, default=200, help="at most N records, the newest (default 200)")
    parser.add_argument("--prune-older-than", type=float, metavar="DAYS",
                        help="delete records older than DAYS instead of listing")  # fmt: skip


def run(
    args: argparse.Namespace, *, out: TextIO | None = None, clock: Callable[[], float] = time.time
) -> int:
    from bot.store import StoreSettings, open_store

    out = out or sys.stdout
    if args.limit < 1:
        raise UsageError("--limit must be at least 1.", fix="For example: --limit 50.")
    if args.prune_older_than is not None and not args.prune_older_than > 0:
        raise UsageError(f"--prune-older-than must be a positive number of days, not {args.prune_older_than:g}.",
                         fix="For example --prune-older-than 365 (0 would delete every record).")
    now = clock()
    store = open_store(StoreSettings.from_environment(), clock=clock, must_exist=True)
    try:
        if args.prune_older_than is not None:
            deleted = store.prune_audit(now - args.prune_older_than * 86400)
            print(f"deleted {deleted} audit record(s) older than {args.prune_older_than:g} day(s)", file=out)
            return 0
        query = AuditQuery(
            since=parse_time(args.since, now),
            until=parse_time(args.until, now) if args.until else None,
            users=tuple(args.users),
            service=args.service,
            request_id=args.request,
            limit=args.limit,
        )
        events = list(reversed(store.query_audit(query)))
    finally:
        store.close()
    if args.json:
        from bot.audit import event_json  # only here: it brings asyncio along

        for event in events:
            print(json.dumps(event_json(event), sort_keys=True), file=out)
    else:
        print(format_table(events), file=out)
    return 0


def format_table(events: list[AuditEvent]) -> str:
    """A fixed-width table for people; `--json` is the format for scripts."""
    if not events:
        return "no audit records match"
    rows = [("TIME (UTC)", "EVENT", "REQUEST", "USER", "SERVICE", "COMMAND", "DETAILS")]
    for e in events:
        command = e.command or ""
        if len(command) > _COMMAND_WIDTH:
            command = command[: _COMMAND_WIDTH - 1] + "…"
        service = f"{e.service} ({e.environment})" if e.service and e.environment else (e.service or "")
        details = " ".join(f"{k}={v}" for k, v in sorted(e.details.items()) if v not in (None, ""))
        rows.append((
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at)), e.kind, e.request_id, e.user or "",
            service, command, details,
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
        for row in rows
    )
