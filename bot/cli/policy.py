"""`ecs-exec-bot policy check|list|test`: what the policy decides, without Slack or AWS.

    ecs-exec-bot policy check --user U… [--group S…]… --channel C… [--config FILE] SERVICE [options] -- COMMAND…
    ecs-exec-bot policy list  --user U… [--group S…]… --channel C… [--config FILE]
    ecs-exec-bot policy test  [--config FILE] CASES.yaml

Exit status of `check` (for scripts and CI tests of a policy change):
0 allowed, 3 needs approval, 77 denied (EX_NOPERM); 64 bad command text, 78 invalid config.
Not 2 for "needs approval", because argparse already exits 2 on a usage error.
`test`: 0 when every case decides as expected, 1 when one does not (each is printed), 78 invalid files.

COMMAND… is joined exactly as `exec` joins it (``bot.shell_syntax.join_command_words``): one word is the
text as typed, several are shell-quoted, so `grep 'a b' /var/log/x` is checked as the shell split it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ConfigError, UsageError
from bot.policy import Decision, PolicyConfig, allowed_summary, evaluate, requested_container
from bot.shell_syntax import join_command_words

if TYPE_CHECKING:
    from bot.config import BotConfig

EXIT_ALLOWED = 0
EXIT_NEEDS_APPROVAL = 3
EXIT_DENIED = 77
EXIT_CASES_FAILED = 1

# Options `check` also takes after SERVICE (as Slack does): name -> takes a value.
_CHECK_OPTIONS = {"--user": True, "--group": True, "--channel": True, "--config": True, "--environment": True,
                  "--timeout": True, "--container": True, "--json": False}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION")
    check = sub.add_parser("check", help="print the decision for one command (exit 0/3/77)",
                           description="Print what the policy decides for a user, channel and command. "
                                       "Options may also follow SERVICE, before the command or `--`.")
    _identity_arguments(check, required=False)
    check.add_argument("--environment", help="environment of SERVICE (default: from the catalogue)")
    check.add_argument("--timeout", type=int, help="timeout the user asks for, in seconds")
    check.add_argument("--container", help="container the user asks for (default: the catalogue's)")
    check.add_argument("--json", action="store_true", help="print the decision as one JSON object")
    check.add_argument("service", metavar="SERVICE", help="service alias as typed in Slack")
    check.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND…")
    listing = sub.add_parser("list", help="print every pattern a user may run, and where",
                             description="Like /ecs-exec list, with every pattern in full.")
    _identity_arguments(listing, required=True)
    test = sub.add_parser("test", help="run a file of policy test cases (exit 1 on any mismatch)",
                          description="Check that the policy decides every case of CASES.yaml as expected "
                                      "(see docs/policy-cookbook.md for the format).")
    test.add_argument("--config", help="config file (default: $ECS_EXEC_BOT_CONFIG)")
    test.add_argument("--verbose", action="store_true", help="also print the cases that pass")
    test.add_argument("cases", metavar="CASES.yaml", help="the test cases")


def _identity_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--user", required=required, help="Slack user ID (U… or W…)")
    parser.add_argument("--group", action="append", default=[], help="Slack user group ID (S…); repeatable")
    parser.add_argument("--channel", required=required, help="Slack channel ID (C…)")
    parser.add_argument("--config", help="config file (default: $ECS_EXEC_BOT_CONFIG)")


@dataclass(frozen=True)
class _Loaded:
    policy: PolicyConfig | None
    environments: dict[str, str]  # service alias -> environment
    no_shell: frozenset[str] = frozenset()  # service aliases whose container has no shell
    containers: dict[str, str | None] = field(default_factory=dict)  # service alias -> catalogue container
    config: BotConfig | None = None  # the whole file (`list` shows its runbooks too)


def load_policy_file(path: str) -> _Loaded:
    """The seam to ``bot.config``: the policy and each service's environment from the config file."""
    from bot.config import load_config

    config = load_config(path)
    policy = config.policy if isinstance(config.policy, PolicyConfig) else None
    environments = {alias: config.environment_of(svc) for alias, svc in config.services.items()}
    no_shell = frozenset(alias for alias, svc in config.services.items() if not svc.shell)
    containers = {alias: svc.container for alias, svc in config.services.items()}
    return _Loaded(policy, environments, no_shell, containers, config)


def _config_path(args: argparse.Namespace) -> str:
    path = args.config or os.environ.get("ECS_EXEC_BOT_CONFIG")
    if not path:
        raise UsageError("No config file given.", fix="Pass --config FILE or set ECS_EXEC_BOT_CONFIG.")
    return str(path)


def run(args: argparse.Namespace) -> int:
    if args.policy_command is None:
        raise UsageError("Say what to do: `policy check`, `policy list` or `policy test`.",
                         fix="See `ecs-exec-bot policy --help`.")
    if args.policy_command == "test":
        return _test(args, load_policy_file(_config_path(args)))
    if args.policy_command == "list":
        loaded = load_policy_file(_config_path(args))
        if loaded.config is not None:
            from bot.allowed import allowed_summary_with_runbooks

            lines = allowed_summary_with_runbooks(
                loaded.config, args.user, frozenset(args.group), args.channel, full=True
            )
        else:
            lines = allowed_summary(loaded.policy, args.user, args.group, args.channel, full=True)
        print("\n".join(lines) if lines else "Nothing: no policy rule includes this user.")
        return 0
    words = _take_late_options(args)
    if not args.user or not args.channel:
        raise UsageError("`policy check` needs --user and --channel.",
                         fix="Example: ecs-exec-bot policy check --user U0ALICE --channel C0OPS web -- uptime")
    return _check(args, load_policy_file(_config_path(args)), words)


def _take_late_options(args: argparse.Namespace) -> list[str]:
    """Options written after SERVICE land in the command words; take them back, up to `--` or the first
    word that is not an option (as Slack reads `/ecs-exec web --timeout 30 tail …`)."""
    words = list(args.command)
    while words and words[0].startswith("-") and words[0] != "-":
        word = words.pop(0)
        if word == "--":
            break
        name, eq, inline = word.partition("=")
        if name not in _CHECK_OPTIONS:
            raise UsageError(f"Unknown option `{name}` after SERVICE.",
                             fix="If it is part of the command, put `--` before the command.")
        if not _CHECK_OPTIONS[name]:
            if eq:
                raise UsageError(f"`{name}` takes no value.", fix="Write it alone.")
            setattr(args, name[2:], True)
            continue
        if not eq:
            if not words:
                raise UsageError(f"`{name}` needs a value.", fix=f"Write `{name} VALUE`.")
            inline = words.pop(0)
        if name == "--group":
            args.group = [*args.group, inline]
        elif name == "--timeout":
            if not inline.isdigit():
                raise UsageError(f"`--timeout {inline}` is not a number of seconds.", fix="Example: --timeout 60")
            args.timeout = int(inline)
        else:
            setattr(args, name[2:], inline)
    return words


def _check(args: argparse.Namespace, loaded: _Loaded, words: list[str]) -> int:
    command = join_command_words(words) if words else ""
    if not command.strip():
        raise UsageError("Give the command to check after `--`.",
                         fix="Example: ecs-exec-bot policy check --user U0ALICE --channel C0OPS web -- uptime")
    environment = args.environment or loaded.environments.get(args.service)
    if environment is None:
        print(f"note: service {args.service!r} is not in the catalogue; rules naming environments will not "
              "match (pass --environment)", file=sys.stderr)
    decision = evaluate(loaded.policy, user_id=args.user, user_groups=args.group, channel_id=args.channel,
                        service_alias=args.service, environment=environment, command=command,
                        requested_timeout=args.timeout, shell_available=args.service not in loaded.no_shell,
                        container=requested_container(args.container, loaded.containers.get(args.service)))
    print(_render_json(decision, command) if args.json else _render_text(decision, command))
    if decision.allowed:
        return EXIT_ALLOWED
    return EXIT_NEEDS_APPROVAL if decision.needs_approval else EXIT_DENIED


def _test(args: argparse.Namespace, loaded: _Loaded) -> int:
    from bot.config import parse_yaml_with_lines
    from bot.policy_cases import parse_cases, run_cases

    path = Path(args.cases)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read test cases {path}: {exc.strerror or exc}.",
                          fix="Check the CASES.yaml path.") from None
    data, lines = parse_yaml_with_lines(text, str(path))
    cases = parse_cases(data, str(path), lines.line)
    results = run_cases(cases, loaded.policy, environments=loaded.environments, no_shell=loaded.no_shell,
                        catalogue_containers=loaded.containers, line_of=lines.line)
    failed = [r for r in results if not r.passed]
    for result in results:
        if not result.passed:
            print(result.report(str(path)))
        elif args.verbose:
            print(f"ok   {result.case.expect:14} `{result.case.command}`"
                  + (f" ({result.case.name})" if result.case.name else ""))
    print(f"{len(results)} case{'s' if len(results) != 1 else ''}: {len(results) - len(failed)} passed, "
          f"{len(failed)} failed")
    return EXIT_CASES_FAILED if failed else 0


def _render_text(decision: Decision, command: str) -> str:
    lines = [f"decision: {decision.outcome.replace('_', ' ')}", f"command: {command}",
             f"rule: {decision.rule or '(none)'}", f"reason: {decision.reason}"]
    closest = decision.refusal.closest if decision.refusal is not None else None
    if closest is not None:
        lines.append(f"closest: {closest.pattern}")
        lines.append(f"  word {closest.word}: expected {closest.expected}; given {closest.given}"
                     + (f" ({closest.why})" if closest.why else ""))
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


def _render_json(decision: Decision, command: str) -> str:
    refusal = decision.refusal
    closest = refusal.closest if refusal is not None else None
    return json.dumps({
        "decision": decision.outcome,
        "command": command,
        "rule": decision.rule,
        "reason": decision.reason,
        "fix": decision.fix,
        "timeout": decision.timeout,
        "refusal": None if refusal is None else {
            "category": refusal.category, "part": refusal.part, "why": refusal.why,
            "closest": None if closest is None else {
                "pattern": closest.pattern, "word": closest.word, "expected": closest.expected,
                "given": closest.given, "why": closest.why,
            },
        },
        "approval": None if decision.approval is None else decision.approval.model_dump(mode="json"),
    }, ensure_ascii=False)
