"""`ecs-exec-bot policy check|list`: what the policy decides, without Slack or AWS.

    ecs-exec-bot policy check --user U… [--group S…]… --channel C… [--config FILE] SERVICE -- COMMAND…
    ecs-exec-bot policy list  --user U… [--group S…]… --channel C… [--config FILE]

Exit status of `check` (for scripts and CI tests of a policy change):
0 allowed, 3 needs approval, 77 denied (EX_NOPERM); 64 bad command text, 78 invalid config.
Not 2 for "needs approval", because argparse already exits 2 on a usage error.

COMMAND… is joined with spaces, like ssh does; to keep quoting exactly, pass the whole command as one
argument: `policy check … web -- 'grep "a b" /var/log/x'`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import UsageError
from bot.policy import Decision, PolicyConfig, allowed_summary, evaluate

if TYPE_CHECKING:
    from bot.config import BotConfig

EXIT_ALLOWED = 0
EXIT_NEEDS_APPROVAL = 3
EXIT_DENIED = 77


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION")
    check = sub.add_parser("check", help="print the decision for one command (exit 0/3/77)",
                           description="Print what the policy decides for a user, channel and command.")
    _identity_arguments(check)
    check.add_argument("--environment", help="environment of SERVICE (default: from the catalogue)")
    check.add_argument("--timeout", type=int, help="timeout the user asks for, in seconds")
    check.add_argument("--json", action="store_true", help="print the decision as one JSON object")
    check.add_argument("service", metavar="SERVICE", help="service alias as typed in Slack")
    check.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND…")
    listing = sub.add_parser("list", help="print what a user may run, and where (like /ecs-exec list)")
    _identity_arguments(listing)


def _identity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True, help="Slack user ID (U… or W…)")
    parser.add_argument("--group", action="append", default=[], help="Slack user group ID (S…); repeatable")
    parser.add_argument("--channel", required=True, help="Slack channel ID (C…)")
    parser.add_argument("--config", help="config file (default: $ECS_EXEC_BOT_CONFIG)")


@dataclass(frozen=True)
class _Loaded:
    policy: PolicyConfig | None
    environments: dict[str, str]  # service alias -> environment
    no_shell: frozenset[str] = frozenset()  # service aliases whose container has no shell
    config: BotConfig | None = None  # the whole file (`list` shows its runbooks too)


def load_policy_file(path: str) -> _Loaded:
    """The seam to ``bot.config``: the policy and each service's environment from the config file."""
    from bot.config import load_config

    config = load_config(path)
    policy = config.policy if isinstance(config.policy, PolicyConfig) else None
    environments = {alias: config.environment_of(svc) for alias, svc in config.services.items()}
    no_shell = frozenset(alias for alias, svc in config.services.items() if not svc.shell)
    return _Loaded(policy, environments, no_shell, config)


def run(args: argparse.Namespace) -> int:
    if args.policy_command is None:
        raise UsageError("Say what to do: `policy check` or `policy list`.",
                         fix="See `ecs-exec-bot policy --help`.")
    path = args.config or os.environ.get("ECS_EXEC_BOT_CONFIG")
    if not path:
        raise UsageError("No config file given.", fix="Pass --config FILE or set ECS_EXEC_BOT_CONFIG.")
    loaded = load_policy_file(path)
    if args.policy_command == "list":
        if loaded.config is not None:
            from bot.runs.intake import allowed_summary_with_runbooks

            lines = allowed_summary_with_runbooks(loaded.config, args.user, frozenset(args.group), args.channel)
        else:
            lines = allowed_summary(loaded.policy, args.user, args.group, args.channel)
        print("\n".join(lines) if lines else "Nothing: no policy rule includes this user.")
        return 0
    return _check(args, loaded)


def _check(args: argparse.Namespace, loaded: _Loaded) -> int:
    words = list(args.command)
    if words and words[0] == "--":
        words = words[1:]
    command = " ".join(words)
    if not command.strip():
        raise UsageError("Give the command to check after `--`.",
                         fix="Example: ecs-exec-bot policy check --user U0ALICE --channel C0OPS web -- uptime")
    environment = args.environment or loaded.environments.get(args.service)
    if environment is None:
        print(f"note: service {args.service!r} is not in the catalogue; rules naming environments will not "
              "match (pass --environment)", file=sys.stderr)
    decision = evaluate(loaded.policy, user_id=args.user, user_groups=args.group, channel_id=args.channel,
                        service_alias=args.service, environment=environment, command=command,
                        requested_timeout=args.timeout, shell_available=args.service not in loaded.no_shell)
    print(_render_json(decision) if args.json else _render_text(decision))
    if decision.allowed:
        return EXIT_ALLOWED
    return EXIT_NEEDS_APPROVAL if decision.needs_approval else EXIT_DENIED


def _render_text(decision: Decision) -> str:
    lines = [f"decision: {decision.outcome.replace('_', ' ')}", f"rule: {decision.rule or '(none)'}",
             f"reason: {decision.reason}"]
    if decision.fix and not decision.allowed and not decision.needs_approval:
        lines.append(f"fix: {decision.fix}")
    if decision.timeout is not None:
        lines.append(f"timeout: {decision.timeout} s")
    if decision.needs_approval and decision.approval is not None:
        a = decision.approval
        who = ", ".join([*a.approvers.users, *a.approvers.groups])
        lines.append(f"approval: {a.min_approvals} of {who}; expires after {a.ttl} s; "
                     f"self-approval {'allowed' if a.allow_self_approval else 'not allowed'}")
    return "\n".join(lines)


def _render_json(decision: Decision) -> str:
    return json.dumps({
        "decision": decision.outcome,
        "rule": decision.rule,
        "reason": decision.reason,
        "fix": decision.fix,
        "timeout": decision.timeout,
        "refusal": None if decision.refusal is None else {
            "category": decision.refusal.category, "part": decision.refusal.part, "why": decision.refusal.why,
        },
        "approval": None if decision.approval is None else decision.approval.model_dump(mode="json"),
    }, ensure_ascii=False)
