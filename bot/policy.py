"""Who may run which command where: the `policy:` section of the config file, and the decision.

Deny by default. A rule grants its ``commands`` to its ``users``/``groups`` (Slack IDs; the caller
passes the requester's resolved user groups), in its ``channels`` (empty = any channel), on the
services it names (``services`` and/or ``environments``; each given list must match, ``"*"`` = any).

A command is checked structurally (``bot.shell_syntax``): it must be one simple command or a pipeline
of them, and *every* simple command must match one of the rule's patterns (``bot.command_patterns``).
A rule with ``allow_shell_syntax: true`` trusts its users with the shell: its regexes are matched
against the whole command text as typed, and it may not use argv patterns (nothing can be said
structurally about arbitrary shell code, so the file must say exactly what text is acceptable).

When several rules allow a command, one that needs no approval wins, then the first in file order.
``evaluate`` is pure and fast: patterns and ID sets are compiled once, when the policy loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from bot.command_patterns import ArgvPattern, CompiledPattern, PatternError, RegexPattern
from bot.errors import ConfigError, PolicyDenied
from bot.output.redact import check_pattern
from bot.shell_syntax import (
    Refusal,
    ShellSyntaxRefused,
    SimpleCommand,
    check_characters,
    clip,
    parse_pipeline,
)

# Slack IDs are immutable (names are not): users U…/W… (Enterprise Grid), user groups S…, channels
# C… (public), G… (private, legacy), D… (DM).
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,20}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TARGET_NAME = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127})$")

# ECS Exec ends a session after 20 minutes without I/O; bot.config uses the same ceiling.
MAX_TIMEOUT_S = 1190
ANY = "*"


class _Strict(BaseModel):
    # A typo such as `aproval:` must fail loudly rather than silently grant or drop a condition.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_ids(rule: str, what: str, values: Iterable[str], shape: re.Pattern[str], hint: str) -> None:
    for value in values:
        if not isinstance(value, str) or not shape.match(value):
            raise ValueError(f"rule {rule!r}: {what} {value!r} is not a Slack {hint}")


class Approvers(_Strict):
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


class ApprovalRule(_Strict):
    """A second person must approve before the command runs (used by ``bot.runs.approvals``)."""

    required: bool = True  # a rule that writes `approval:` means it; `required: false` turns it off
    approvers: Approvers = Field(default_factory=Approvers)
    min_approvals: int = Field(default=1, ge=1, le=10)
    ttl: int = Field(default=900, ge=60, le=7 * 86400, description="seconds a request stays approvable")
    allow_self_approval: bool = False

    def may_approve(self, approver_id: str, approver_groups: Iterable[str], requester_id: str) -> bool:
        """Whether this Slack user may vote on a request made by ``requester_id``."""
        if approver_id == requester_id and not self.allow_self_approval:
            return False
        return approver_id in self.approvers.users or not set(approver_groups).isdisjoint(
            self.approvers.groups
        )


class CommandPattern(_Strict):
    """One of ``argv: [glob, ...]`` or ``regex: '...'`` (see ``bot.command_patterns``)."""

    argv: tuple[str, ...] | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CommandPattern:
        if (self.argv is None) == (self.regex is None):
            raise ValueError("a command pattern needs exactly one of `argv:` or `regex:`")
        return self


class Rule(_Strict):
    name: str
    description: str = ""
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    commands: tuple[CommandPattern, ...] = Field(min_length=1)
    allow_shell_syntax: bool = False
    timeout: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S)
    approval: ApprovalRule | None = None
    runbooks: tuple[str, ...] = ()  # runbooks granted by name (bot/runbooks.py), even if `commands` would not

    _matcher: RuleMatcher | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _validate_and_compile(self) -> Rule:
        name = self.name
        if not RULE_NAME.match(name):
            raise ValueError(f"rule name {name!r} must be letters, digits, `-`, `_` or `.` (at most 64)")
        if not self.users and not self.groups:
            raise ValueError(f"rule {name!r}: name at least one of `users:` or `groups:` (deny by default)")
        if not self.environments and not self.services:
            raise ValueError(f"rule {name!r}: name `environments:` and/or `services:` (\"*\" for any)")
        _check_ids(name, "user", self.users, USER_ID, "user ID (U… or W…)")
        _check_ids(name, "group", self.groups, GROUP_ID, "user group ID (S…)")
        _check_ids(name, "channel", self.channels, CHANNEL_ID, "channel ID (C…, G… or D…)")
        for what, values in (("environment", self.environments), ("service", self.services)):
            for value in values:
                if not _TARGET_NAME.match(value):
                    raise ValueError(f"rule {name!r}: {what} {value!r} is not a valid name (or \"*\")")
        approval = self.approval
        if approval is not None:
            _check_ids(name, "approver", approval.approvers.users, USER_ID, "user ID (U… or W…)")
            _check_ids(name, "approver group", approval.approvers.groups, GROUP_ID, "user group ID (S…)")
        if approval is not None and approval.required:
            if not approval.approvers.users and not approval.approvers.groups:
                raise ValueError(f"rule {name!r}: approval is required but names no approvers")
            if not approval.approvers.groups and len(set(approval.approvers.users)) < approval.min_approvals:
                raise ValueError(f"rule {name!r}: min_approvals is larger than the number of approvers")
        compiled: list[CompiledPattern] = []
        for n, pattern in enumerate(self.commands, start=1):
            try:
                if pattern.argv is not None:
                    if self.allow_shell_syntax:
                        raise PatternError(
                            "allow_shell_syntax rules match the whole text and need `regex:` patterns"
                        )
                    compiled.append(ArgvPattern(pattern.argv))
                else:
                    compiled.append(RegexPattern(pattern.regex or ""))
            except PatternError as exc:
                raise ValueError(f"rule {name!r}: command {n}: {exc}") from None
        self._matcher = RuleMatcher(self, tuple(compiled))
        return self

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None and self.approval.required

    @property
    def matcher(self) -> RuleMatcher:
        assert self._matcher is not None  # set by the validator; a Rule cannot exist without it
        return self._matcher

    def describe_patterns(self) -> str:
        return self.matcher.patterns_text

    # Used by the handlers (doctor/list) as well as by ``evaluate``.
    def includes_user(self, user_id: str, user_groups: Iterable[str]) -> bool:
        return self.matcher.includes_user(user_id, frozenset(user_groups))

    def includes_channel(self, channel_id: str) -> bool:
        return self.matcher.includes_channel(channel_id)

    def includes_service(self, service_alias: str, environment: str | None) -> bool:
        return self.matcher.includes_service(service_alias, environment)


class RuleMatcher:
    """A rule compiled for ``evaluate``: plain attributes and precompiled patterns, so the hot path
    touches no pydantic machinery (1,000 rules are checked in a few milliseconds)."""

    __slots__ = ("rule", "name", "users", "groups", "channels", "environments", "services", "patterns",
                 "shell", "timeout", "needs_approval", "patterns_text")

    def __init__(self, rule: Rule, patterns: tuple[CompiledPattern, ...]) -> None:
        self.rule = rule
        self.name = rule.name
        self.users = frozenset(rule.users)
        self.groups = frozenset(rule.groups)
        self.channels = frozenset(rule.channels)
        self.environments = None if not rule.environments or ANY in rule.environments else frozenset(
            rule.environments)
        self.services = None if not rule.services or ANY in rule.services else frozenset(rule.services)
        self.patterns = patterns
        self.shell = rule.allow_shell_syntax
        self.timeout = rule.timeout
        self.needs_approval = rule.needs_approval
        shown = [p.describe() for p in patterns[:5]]
        if len(patterns) > 5:
            shown.append(f"and {len(patterns) - 5} more")
        self.patterns_text = ", ".join(shown)

    def includes_user(self, user_id: str, user_groups: frozenset[str]) -> bool:
        return user_id in self.users or not self.groups.isdisjoint(user_groups)

    def includes_channel(self, channel_id: str) -> bool:
        return not self.channels or channel_id in self.channels

    def includes_service(self, service_alias: str, environment: str | None) -> bool:
        if self.services is not None and service_alias not in self.services:
            return False
        return self.environments is None or environment in self.environments

    def check_command(self, command: str, pipeline: tuple[SimpleCommand, ...] | Refusal) -> Refusal | None:
        """None when this rule's patterns allow ``command``; otherwise why not."""
        if self.shell:
            return self._check_shell_text(command)
        if isinstance(pipeline, Refusal):
            return pipeline
        for simple in pipeline:
            refusal = self._check_simple(simple)
            if refusal is not None:
                return refusal
        return None

    def _no_match(self, part: str) -> Refusal:
        return Refusal("no-match", part, f"it matches none of the rule's command patterns ({self.patterns_text})")

    def _check_simple(self, simple: SimpleCommand) -> Refusal | None:
        first_refusal: Refusal | None = None
        for pattern in self.patterns:
            outcome = pattern.match(simple)
            if outcome.matched:
                return None
            first_refusal = first_refusal or outcome.refusal
        if first_refusal is not None:
            return first_refusal
        return self._no_match(f"`{clip(simple.source, 80)}`")

    def _check_shell_text(self, command: str) -> Refusal | None:
        try:
            check_characters(command, allow_newlines=True)
        except ShellSyntaxRefused as exc:
            return exc.refusal
        text = command.strip()
        for pattern in self.patterns:
            if isinstance(pattern, RegexPattern) and pattern.regex.fullmatch(text):
                return None
        return self._no_match("the command")


class RedactPattern(_Strict):
    """Extra secret shapes for ``bot.output.redact`` (``[redacted:<name>]``)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    pattern: str

    @model_validator(mode="after")
    def _compiles(self) -> RedactPattern:
        # The redactor's own check also refuses shapes that backtrack catastrophically (``(a+)+``).
        try:
            compiled = check_pattern(self.name, self.pattern)
        except ConfigError as exc:
            raise ValueError(exc.user_text().rstrip(".")) from None
        if compiled.fullmatch(""):
            raise ValueError(f"redact pattern {self.name!r} matches the empty string")
        return self


class PolicyConfig(_Strict):
    rules: tuple[Rule, ...] = ()
    redact: tuple[RedactPattern, ...] = ()

    _index: _RuleIndex | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_names(self) -> PolicyConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice; names must be unique")
            seen.add(rule.name)
        self._index = _RuleIndex(tuple(rule.matcher for rule in self.rules))
        return self

    def rules_for(self, user_id: str, user_groups: frozenset[str]) -> list[RuleMatcher]:
        """The rules naming this user or one of their groups, in file order."""
        assert self._index is not None
        return self._index.rules_for(user_id, user_groups)


class _RuleIndex:
    """Rule positions by user and by group, so a request only looks at the rules that name its user."""

    __slots__ = ("matchers", "by_user", "by_group")

    def __init__(self, matchers: tuple[RuleMatcher, ...]) -> None:
        self.matchers = matchers
        self.by_user: dict[str, list[int]] = {}
        self.by_group: dict[str, list[int]] = {}
        for position, matcher in enumerate(matchers):
            for user in matcher.users:
                self.by_user.setdefault(user, []).append(position)
            for group in matcher.groups:
                self.by_group.setdefault(group, []).append(position)

    def rules_for(self, user_id: str, user_groups: frozenset[str]) -> list[RuleMatcher]:
        positions = set(self.by_user.get(user_id, ()))
        for group in user_groups:
            positions.update(self.by_group.get(group, ()))
        return [self.matchers[p] for p in sorted(positions)]


def parse_policy(data: Any, *, source: str = "policy") -> PolicyConfig:
    """Validate a `policy:` mapping outside ``bot.config`` (tests, the CLI seam); errors → ``ConfigError``."""
    try:
        return PolicyConfig.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "policy"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"Invalid {source} at {where}: {msg}.", fix="Fix the policy and load it again.") from None


# -- the decision ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Exactly one of: ``allowed`` (run it), ``needs_approval`` (run only after ``approval`` is satisfied),
    or neither (denied; ``reason`` and ``fix`` say why and what to do). ``allowed`` is False while approval
    is pending, so a caller that only checks ``allowed`` never runs an unapproved command."""

    allowed: bool
    needs_approval: bool
    rule: str | None  # name of the deciding rule (None when no rule applied)
    reason: str
    timeout: int | None  # requested, else the rule's; None = the service's default
    approval: ApprovalRule | None
    refusal: Refusal | None = None  # structured reason for a denial
    fix: str | None = None

    @property
    def outcome(self) -> str:
        return "allowed" if self.allowed else "needs_approval" if self.needs_approval else "denied"

    def to_error(self) -> PolicyDenied:
        return PolicyDenied(self.reason, fix=self.fix)


_LIST_FIX = "Run `/ecs-exec list` to see what you may run, and where."


def _deny(reason: str, refusal: Refusal, *, rule: str | None = None, fix: str = _LIST_FIX) -> Decision:
    return Decision(False, False, rule, reason, None, None, refusal, fix)


def evaluate(
    policy: PolicyConfig | None,
    *,
    user_id: str,
    user_groups: Iterable[str],
    channel_id: str,
    service_alias: str,
    environment: str | None,
    command: str,
    requested_timeout: int | None = None,
    shell_available: bool = True,
) -> Decision:
    """Decide whether ``user_id`` may run ``command`` on ``service_alias`` from ``channel_id``. Pure;
    never raises for any input (a malformed request is a denial with a reason).

    ``shell_available=False`` (the catalogue's ``shell: false``): the agent splits the command itself,
    so a ``|`` would reach the program as an argument; pipelines are refused rather than misread."""
    groups = frozenset(user_groups)
    mine = policy.rules_for(user_id, groups) if policy is not None else []
    here = [r for r in mine if r.includes_service(service_alias, environment)]
    candidates = [r for r in here if r.includes_channel(channel_id)]
    if not candidates:
        return _no_rule(mine, here, service_alias, environment)

    pipeline: tuple[SimpleCommand, ...] | Refusal | None = None
    allowed: list[RuleMatcher] = []
    refusals: list[tuple[RuleMatcher, Refusal]] = []
    for rule in candidates:
        if pipeline is None and not rule.shell:
            try:
                pipeline = parse_pipeline(command)
            except ShellSyntaxRefused as exc:
                pipeline = exc.refusal
            if not shell_available and not isinstance(pipeline, Refusal) and len(pipeline) > 1:
                pipeline = Refusal("no-shell", f"`|` (after `{pipeline[0].source}`)",
                                   "this container has no shell, so a pipe would not work; run one command")
            if not shell_available and not isinstance(pipeline, Refusal):
                pipeline = _agent_split_differs(command) or pipeline
        refusal = rule.check_command(command, pipeline if pipeline is not None else ())
        if refusal is None and requested_timeout is not None and rule.timeout is not None:
            if requested_timeout > rule.timeout:
                refusal = Refusal("timeout", f"`--timeout {requested_timeout}`",
                                  f"it is longer than the {rule.timeout} s the rule allows; use --timeout "
                                  f"{rule.timeout} or less")
        if refusal is None:
            allowed.append(rule)
        else:
            refusals.append((rule, refusal))

    if allowed:
        rule = next((r for r in allowed if not r.needs_approval), allowed[0])
        timeout = requested_timeout if requested_timeout is not None else rule.timeout
        approval = rule.rule.approval
        if rule.needs_approval:
            return Decision(False, True, rule.name, f"Rule {rule.name} allows this after approval.",
                            timeout, approval)
        return Decision(True, False, rule.name, f"Allowed by rule {rule.name}.", timeout, approval)

    # Prefer a specific reason (syntax, danger, timeout) over "matches no pattern".
    rule, refusal = next(((r, f) for r, f in refusals if f.category != "no-match"), refusals[0])
    others = len(refusals) - 1
    also = f" ({others} other rule{'s' if others > 1 else ''} also refused it)" if others else ""
    return _deny(f"{refusal.part} is refused by rule {rule.name}: {refusal.why}.{also}", refusal,
                 rule=rule.name)


def _agent_split_differs(command: str) -> Refusal | None:
    """Without a shell the ECS agent splits the text with Go's ``google/shlex``, which reads a backslash
    inside double quotes differently from a POSIX shell: it escapes *any* character (``"\\.\\."`` is
    ``..`` to the agent, ``\\.\\.`` to the policy). That is the only place the two splitters disagree on
    text ``parse_pipeline`` accepts, so refuse it rather than check words the agent never sees."""
    quote = ""
    i = 0
    while i < len(command):
        ch = command[i]
        if quote == "'":
            quote = "" if ch == "'" else quote
        elif quote == '"':
            if ch == "\\":
                return Refusal("no-shell", f"`{clip(command[: i + 2], 40, keep_end=True)}`",
                               "this container has no shell, and the ECS agent reads a backslash inside "
                               "double quotes differently from a shell; use single quotes")
            quote = "" if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1  # an escaped character: the same to both splitters
        i += 1
    return None


def _no_rule(mine: list[RuleMatcher], here: list[RuleMatcher], service: str, environment: str | None
             ) -> Decision:
    target = f"`{service}`" + (f" ({environment})" if environment else "")
    if not mine:
        return _deny("No policy rule includes you, so you cannot run commands (deny by default).",
                     Refusal("no-rule", "you", "are in no policy rule"),
                     fix="Ask the bot's admins to add you (or one of your user groups) to a rule.")
    if not here:
        return _deny(f"No policy rule lets you run commands on {target}.",
                     Refusal("no-rule", target, "is in none of your rules"))
    channels = sorted({c for r in here for c in r.channels})
    where = ", ".join(f"<#{c}>" for c in channels[:5])
    return _deny(f"Your rules for {target} apply only in {where}.",
                 Refusal("channel", "this channel", f"is not one of {where}"),
                 fix="Run the command in one of those channels.")


def allowed_summary(
    policy: PolicyConfig | None, user_id: str, user_groups: Iterable[str], channel_id: str
) -> list[str]:
    """One line per rule that includes the user: where, what, and conditions (for `/ecs-exec list`).
    Rules limited to other channels are listed too, saying where they apply."""
    groups = frozenset(user_groups)
    lines: list[str] = []
    for matcher in policy.rules_for(user_id, groups) if policy is not None else ():
        rule = matcher.rule
        targets: list[str] = []
        if rule.services:
            targets.append("any service" if ANY in rule.services else "services " + ", ".join(rule.services))
        if rule.environments and ANY not in rule.environments:
            targets.append("in " + ", ".join(rule.environments))
        conditions = []
        if rule.allow_shell_syntax:
            conditions.append("shell syntax allowed")
        if rule.timeout:
            conditions.append(f"timeout ≤ {rule.timeout} s")
        if rule.needs_approval and rule.approval is not None:
            n = rule.approval.min_approvals
            conditions.append(f"needs {n} approval{'s' if n > 1 else ''}")
        if rule.channels and not matcher.includes_channel(channel_id):
            conditions.append("only in " + ", ".join(f"<#{c}>" for c in rule.channels))
        extra = f" ({'; '.join(conditions)})" if conditions else ""
        lines.append(f"{rule.name}: {' '.join(targets) or 'any service'}: {rule.describe_patterns()}{extra}")
    return lines
