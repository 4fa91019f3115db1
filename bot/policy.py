"""Who may run which command where: the `policy:` section of the config file, and the decision.

Deny by default. A rule grants its ``commands`` to its ``users``/``groups`` (Slack IDs; the caller
passes the requester's resolved user groups), in its ``channels`` (empty = any channel), on the
services it names (``services`` and/or ``environments``; each given list must match, ``"*"`` = any).

A rule reaches the catalogue's container of a service only, unless it lists ``containers:`` (then
exactly those; ``"*"`` = any): ``--container envoy`` needs a rule that names ``envoy``.

A command is checked structurally (``bot.shell_syntax``): it must be one simple command or a pipeline
of them, and *every* simple command must match one of the rule's patterns (``bot.command_patterns``,
typed matchers in ``bot.argv_matchers``) allowed at its place in the pipeline (``position:``). A refusal
for "matches no pattern" names the pattern that came closest and where it differs.
A rule with ``allow_shell_syntax: true`` trusts its users with the shell: its regexes are matched
against the whole command text as typed, and it may not use argv patterns (nothing can be said
structurally about arbitrary shell code, so the file must say exactly what text is acceptable).

When several rules allow a command, one that needs no approval wins, then the first in file order.
``evaluate`` is pure and fast: patterns and ID sets are compiled once, when the policy loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from bot.command_patterns import (
    Closest,
    CompiledPattern,
    PatternError,
    PatternsByProgram,
    Position,
    RegexPattern,
    compile_argv,
    position_allows,
)
from bot.errors import ConfigError, PolicyDenied
from bot.fast_init import fast_init
from bot.regex_shapes import check_pattern
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
_CONTAINER_NAME = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,254})$")

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
    """One of ``argv: [word or typed matcher, ...]`` or ``regex: '...'`` (see ``bot.command_patterns``
    and ``bot.argv_matchers``), and where in a pipeline it applies: ``position: first`` (the first
    command only), ``filter`` (only after a ``|``) or ``any`` (the default, today's meaning)."""

    argv: tuple[Any, ...] | None = None
    regex: str | None = None
    position: Position = "any"

    _compiled: CompiledPattern | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _exactly_one_and_compiled(self) -> CommandPattern:
        # Compiled here, so an error points at this pattern's line in the file.
        if (self.argv is None) == (self.regex is None):
            raise ValueError("a command pattern needs exactly one of `argv:` or `regex:`")
        try:
            if self.argv is not None:
                self._compiled = compile_argv(self.argv, self.position)
            else:
                self._compiled = RegexPattern(self.regex or "", self.position)
        except PatternError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def compiled(self) -> CompiledPattern:
        assert self._compiled is not None  # set by the validator
        return self._compiled


class Rule(_Strict):
    name: str
    description: str = ""
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    # The containers this rule reaches, and only those ("*" = any); absent = the catalogue's container
    # only, so a sidecar (envoy, datadog-agent) is never reached by accident.
    containers: tuple[str, ...] = ()
    commands: tuple[CommandPattern, ...] = Field(min_length=1)
    allow_shell_syntax: bool = False
    # Guests and people from other organisations (Slack Connect) are refused unless their rule says so.
    allow_guests: bool = False
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
        for value in self.containers:
            if not _CONTAINER_NAME.match(value):
                raise ValueError(f"rule {name!r}: container {value!r} is not a valid container name (or \"*\")")
        approval = self.approval
        if approval is not None:
            _check_ids(name, "approver", approval.approvers.users, USER_ID, "user ID (U… or W…)")
            _check_ids(name, "approver group", approval.approvers.groups, GROUP_ID, "user group ID (S…)")
        if approval is not None and approval.required:
            if not approval.approvers.users and not approval.approvers.groups:
                raise ValueError(f"rule {name!r}: approval is required but names no approvers")
            if not approval.approvers.groups and len(set(approval.approvers.users)) < approval.min_approvals:
                raise ValueError(f"rule {name!r}: min_approvals is larger than the number of approvers")
        for n, pattern in enumerate(self.commands, start=1):
            if self.allow_shell_syntax and pattern.argv is not None:
                raise ValueError(f"rule {name!r}: command {n}: allow_shell_syntax rules match the whole "
                                 "text and need `regex:` patterns")
            if self.allow_shell_syntax and pattern.position != "any":
                raise ValueError(f"rule {name!r}: command {n}: allow_shell_syntax rules match the whole "
                                 "text, so `position:` means nothing there; remove it")
        self._matcher = RuleMatcher(self, tuple(p.compiled for p in self.commands))
        return self

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None and self.approval.required

    @property
    def matcher(self) -> RuleMatcher:
        assert self._matcher is not None  # set by the validator; a Rule cannot exist without it
        return self._matcher

    def describe_patterns(self, *, full: bool = False) -> str:
        """The patterns for a listing: the first five (Slack's length limits), or all of them."""
        if full:
            return ", ".join(p.describe() for p in self.matcher.patterns)
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

    __slots__ = ("rule", "name", "users", "groups", "channels", "environments", "services", "containers",
                 "anywhere", "patterns", "shell", "timeout", "needs_approval", "patterns_text", "first", "filters")

    def __init__(self, rule: Rule, patterns: tuple[CompiledPattern, ...]) -> None:
        self.rule = rule
        self.name = rule.name
        self.users = frozenset(rule.users)
        self.groups = frozenset(rule.groups)
        self.channels = frozenset(rule.channels)
        self.environments = None if not rule.environments or ANY in rule.environments else frozenset(
            rule.environments)
        self.services = None if not rule.services or ANY in rule.services else frozenset(rule.services)
        # None: any container; otherwise the named ones, where None stands for the catalogue's.
        # A rule that lists containers reaches exactly those; one that lists none, the catalogue's only.
        self.containers: frozenset[str | None] | None = None if ANY in rule.containers else frozenset(
            rule.containers or (None,))
        # In every environment and channel, for the catalogue's container (on its services): what most rules
        # say, so the rule index tests one flag for them.
        self.anywhere = self.environments is None and not self.channels and self.includes_container(None)
        self.patterns = patterns
        # What to try for the first command of a pipeline and for those after a `|`, by program.
        self.first = PatternsByProgram(patterns, 0)
        # The same table when no pattern names a position (most rules): half the memory a request touches.
        self.filters = self.first if all(p.position == "any" for p in patterns) else PatternsByProgram(patterns, 1)
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

    def includes_container(self, container: str | None) -> bool:
        """``container`` None is the catalogue's container (or the task's default one)."""
        return self.containers is None or container in self.containers

    def check_command(self, command: str, pipeline: tuple[SimpleCommand, ...] | Refusal) -> Refusal | None:
        """None when this rule's patterns allow ``command``; otherwise why not."""
        found = self.check(command, pipeline)
        if isinstance(found, int):
            assert not isinstance(pipeline, Refusal)  # an index only comes from a parsed pipeline
            return self.no_match_at(pipeline, found)
        return found

    def check(self, command: str, pipeline: tuple[SimpleCommand, ...] | Refusal, start: int = 0,
              ) -> Refusal | int | None:
        """``check_command`` as ``evaluate`` asks it: "no pattern matches the pipeline's command at index
        i" is just ``i``. Most rules a request reaches refuse it that way, and a denial names one of them,
        so its sentence is made once, by ``no_match_at`` or ``explain``. ``start``: the place in a longer
        pipeline of ``pipeline[0]`` (its index in what is returned, and whether it is after a ``|``).

        The one owner of "does this rule allow this pipeline": the per-command lookup and pattern loop are
        inline, as this runs for every rule a request reaches (each call saved shows in a decision's time)."""
        if self.shell:
            return self._check_shell_text(command)
        if isinstance(pipeline, Refusal):
            return pipeline
        table = self.filters if start else self.first
        for index, simple in enumerate(pipeline, start):
            words = simple.words
            first_refusal: Refusal | None = None
            for pattern in table.named_tries.get(words[0].value, table.other_tries) if words else table.other_tries:
                outcome = pattern.match(simple)
                if outcome.matched:
                    break
                first_refusal = first_refusal or outcome.refusal
            else:
                return first_refusal if first_refusal is not None else index
            table = self.filters
        return None

    def no_match_at(self, pipeline: tuple[SimpleCommand, ...], index: int,
                    closest: Closest | None = None) -> Refusal:
        return self._no_match(f"`{clip(pipeline[index].source, 80)}`", index, closest)

    def _no_match(self, part: str, index: int | None = None, closest: Closest | None = None) -> Refusal:
        n = len(self.patterns)
        why = f"it matches none of the rule's {n} command pattern{'s' if n > 1 else ''}"
        if closest is not None:
            why += f"; {closest.sentence()}"
        return Refusal("no-match", part, why, closest, index)

    def nearest(self, simple: SimpleCommand, index: int) -> tuple[int, CompiledPattern | None]:
        """The pattern that came closest and its score, without making any sentence (the slow path of a
        denial, for a few rules). A pattern matching but for its pipeline position scores highest."""
        table = self.filters if index else self.first
        best: tuple[int, CompiledPattern | None] = (-1, None)
        for pattern, here in table.scored(simple.words):
            if not here:
                if pattern.match(simple).matched:
                    return len(simple.words) + 1, pattern
                continue
            score = pattern.score(simple)
            if score > best[0]:
                best = (score, pattern)
        if best[0] <= 0 and table.first_here is not None:
            # The patterns not tried (other programs) score 0 as well; in file order, the first pattern
            # allowed here wins a tie at 0.
            return 0, table.first_here
        return best

    def may_beat(self, simple: SimpleCommand, index: int, best: int) -> bool:
        """Whether ``nearest(simple, index)`` could score above ``best``, when ``check`` reported ``index``
        (no pattern matched or refused ``simple`` there); see ``PatternsByProgram.may_beat``."""
        return (self.filters if index else self.first).may_beat(simple.words, best)

    def closest(self, simple: SimpleCommand, index: int,
                nearest: tuple[int, CompiledPattern | None] | None = None) -> Closest | None:
        """``nearest``: what ``nearest(simple, index)`` returned, when the caller already asked."""
        score, pattern = nearest if nearest is not None else self.nearest(simple, index)
        if pattern is None:
            return None
        if not position_allows(pattern.position, index):
            where = "first command" if index == 0 else "after a `|`"
            expected = "after a `|` (a filter)" if pattern.position == "filter" else "the first command"
            return Closest(pattern.describe(), 1, f"used {expected}", f"as the {where}", score=score)
        return pattern.closest(simple)

    def explain(self, refusal: Refusal | int, pipeline: tuple[SimpleCommand, ...],
                nearest: tuple[int, CompiledPattern | None] | None = None) -> Refusal:
        """A "no-match" refusal (or the index ``check`` gave for one) with the closest pattern added."""
        index = refusal if isinstance(refusal, int) else refusal.command_index
        if index is None or index >= len(pipeline):
            assert isinstance(refusal, Refusal)  # an index from `check` is one of the pipeline's
            return refusal
        return self.no_match_at(pipeline, index, self.closest(pipeline[index], index, nearest))

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
        return self._rule_index().rules_for(user_id, user_groups)

    def _rule_index(self) -> _RuleIndex:
        # `self._index` without BaseModel.__getattr__ (a private attribute's slow path), once per request.
        index: _RuleIndex = self.__pydantic_private__["_index"]  # type: ignore[index]
        return index


class _OnService:
    """The rules of one user or group that may apply to one service, in file order. Reaches naming the same
    rules share one (the index interns them), so a request merges them once, by identity."""

    __slots__ = ("positions", "rules", "anywhere", "_here")

    def __init__(self, positions: tuple[int, ...], rules: tuple[RuleMatcher, ...]) -> None:
        self.positions = positions
        self.rules = rules
        # Every rule applies in any environment and channel, for the catalogue's container: then, for a
        # request to the catalogue's container, these are the candidates as they are.
        self.anywhere = all(rule.anywhere for rule in rules)
        # Those that apply where a request is (channel, environment, container), remembered: a team asks
        # from the same few places, and filtering costs more than the rest of finding the rules.
        self._here: dict[tuple[str, str | None, str | None], tuple[RuleMatcher, ...]] = {}

    def here(self, channel_id: str, environment: str | None, container: str | None) -> tuple[RuleMatcher, ...]:
        if container is None and self.anywhere:
            return self.rules
        place = (channel_id, environment, container)
        found = self._here.get(place)
        if found is None:
            found = tuple(_applying(self.rules, channel_id, environment, container))
            if len(self._here) >= _PLACES_REMEMBERED:
                self._here.clear()  # a bound, whoever sends requests from wherever
            self._here[place] = found
        return found


class _Reach:
    """The rules naming one user or group: all of them, and those that may apply to each service (a rule
    for any service, or only for environments, is in every list). Positions are added in file order, so
    each list stays in file order; ``freeze`` turns the lists into shared ``_OnService`` entries."""

    __slots__ = ("positions", "adding", "adding_any", "by_service", "any_service")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.adding: dict[str, list[int]] = {}
        self.adding_any: list[int] = []
        self.by_service: dict[str, _OnService] = {}
        self.any_service = _NOWHERE

    def add(self, position: int, services: frozenset[str] | None) -> None:
        self.positions.append(position)
        if services is None:
            self.adding_any.append(position)
            for on_service in self.adding.values():
                on_service.append(position)
            return
        for service in services:
            self.adding.setdefault(service, list(self.adding_any)).append(position)

    def freeze(self, entry: Callable[[list[int]], _OnService]) -> None:
        self.by_service = {service: entry(positions) for service, positions in self.adding.items()}
        self.any_service = entry(self.adding_any)
        self.adding, self.adding_any = {}, []


_NOWHERE = _OnService((), ())


class _RuleIndex:
    """Rule positions by user and by group, each also by service, so a request only looks at the rules
    that name its user (and, to decide, only at those that can reach its service)."""

    __slots__ = ("matchers", "by_user", "by_group")

    def __init__(self, matchers: tuple[RuleMatcher, ...]) -> None:
        self.matchers = matchers
        self.by_user: dict[str, _Reach] = {}
        self.by_group: dict[str, _Reach] = {}
        for position, matcher in enumerate(matchers):
            for user in matcher.users:
                self.by_user.setdefault(user, _Reach()).add(position, matcher.services)
            for group in matcher.groups:
                self.by_group.setdefault(group, _Reach()).add(position, matcher.services)
        # A user and their team's group usually name the same rules: one entry for each list of rules.
        entries: dict[tuple[int, ...], _OnService] = {(): _NOWHERE}

        def entry(positions: list[int]) -> _OnService:
            key = tuple(positions)
            found = entries.get(key)
            if found is None:
                found = entries[key] = _OnService(key, tuple(matchers[p] for p in key))
            return found

        for reach in (*self.by_user.values(), *self.by_group.values()):
            reach.freeze(entry)

    def reaches(self, user_id: str, user_groups: frozenset[str]) -> list[_Reach]:
        """The entries of the user and of their groups that name any rule."""
        found = [self.by_group[g] for g in user_groups if g in self.by_group]
        user = self.by_user.get(user_id)
        return found + [user] if user is not None else found

    def rules_for(self, user_id: str, user_groups: frozenset[str]) -> list[RuleMatcher]:
        return self.rules_of(self.reaches(user_id, user_groups))

    def rules_of(self, reaches: list[_Reach]) -> list[RuleMatcher]:
        """The rules of ``reaches``, in file order."""
        positions = {p for reach in reaches for p in reach.positions}
        return [self.matchers[p] for p in sorted(positions)]

    def candidates(self, reaches: list[_Reach], service: str, environment: str | None, container: str | None,
                   channel_id: str) -> Sequence[RuleMatcher]:
        """``[r for r in rules_of(reaches) if r applies to service, environment, container and channel]``
        without looking at the user's rules for other services. Runs for every request: most find one
        entry, whose rules for the request's place it remembers (a tuple, shared)."""
        first = _NOWHERE
        more: list[_OnService] | None = None
        for reach in reaches:
            # The reach's rules that may apply to the service (environments still to check).
            on_service = reach.by_service.get(service, reach.any_service)
            if not on_service.positions or on_service is first:
                continue
            if not first.positions:
                first = on_service
            elif more is None:
                more = [first, on_service]
            elif on_service not in more:
                more.append(on_service)
        if more is None:
            return first.here(channel_id, environment, container) if first.positions else ()
        # Each entry is in file order; merge them.
        rules = map(self.matchers.__getitem__, sorted({p for entry in more for p in entry.positions}))
        return list(_applying(rules, channel_id, environment, container))


_PLACES_REMEMBERED = 64


def _applying(rules: Iterable[RuleMatcher], channel_id: str, environment: str | None,
              container: str | None) -> Iterable[RuleMatcher]:
    """The rest of ``includes_service`` (the index matched the service), ``includes_container`` and
    ``includes_channel``, inline. Most rules apply anywhere their services are, for the catalogue's
    container: one test for those."""
    return (rule for rule in rules
            if (container is None and rule.anywhere)
            or ((rule.environments is None or environment in rule.environments)
                and (rule.containers is None or container in rule.containers)
                and (not rule.channels or channel_id in rule.channels)))


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


@fast_init  # one per request (bot/fast_init.py)
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
# How many refusing rules a denial searches for the closest pattern.
_CLOSEST_RULES = 16


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
    container: str | None = None,
) -> Decision:
    """Decide whether ``user_id`` may run ``command`` on ``service_alias`` from ``channel_id``. Pure;
    never raises for any input (a malformed request is a denial with a reason).

    ``container``: the container the user asked for, None for the catalogue's (see
    ``requested_container``); only rules listing it under ``containers:`` reach another one.

    ``shell_available=False`` (the catalogue's ``shell: false``): the agent splits the command itself,
    so a ``|`` would reach the program as an argument; pipelines are refused rather than misread."""
    if policy is None:
        return _no_rule([], [], [], service_alias, environment, container)
    index = policy._rule_index()
    reaches = index.reaches(user_id, frozenset(user_groups))
    candidates = index.candidates(reaches, service_alias, environment, container, channel_id)
    if not candidates:
        mine = index.rules_of(reaches)
        on_service = [r for r in mine if r.includes_service(service_alias, environment)]
        here = [r for r in on_service if r.includes_container(container)]
        return _no_rule(mine, on_service, here, service_alias, environment, container)

    # Parsed once, before any rule: a rule allowing shell syntax reads the text instead, but such rules are
    # rare, and a parse left to the loop would cost a test per rule on every request.
    pipeline: tuple[SimpleCommand, ...] | Refusal
    try:
        pipeline = parse_pipeline(command)
    except ShellSyntaxRefused as exc:
        pipeline = exc.refusal
    if not shell_available and not isinstance(pipeline, Refusal):
        if len(pipeline) > 1:
            pipeline = Refusal("no-shell", f"`|` (after `{pipeline[0].source}`)",
                               "this container has no shell, so a pipe would not work; run one command")
        else:
            pipeline = _agent_split_differs(command) or pipeline
    allowed: list[RuleMatcher] = []
    refusals: list[tuple[RuleMatcher, Refusal | int]] = []  # int: no pattern matches that command
    # The first refusal with a specific reason (syntax, danger, timeout), preferred over "matches no pattern".
    specific: tuple[RuleMatcher, Refusal] | None = None
    furthest = 0  # the furthest command of the pipeline a searched rule found no pattern for
    for rule in candidates:
        found = rule.check(command, pipeline)
        if found is None and requested_timeout is not None and rule.timeout is not None:
            if requested_timeout > rule.timeout:
                found = Refusal("timeout", f"`--timeout {requested_timeout}`",
                                f"it is longer than the {rule.timeout} s the rule allows; use --timeout "
                                f"{rule.timeout} or less")
        if found is None:
            allowed.append(rule)
            if not rule.needs_approval:
                break  # the first rule allowing it without approval decides; the rest cannot change that
        else:
            refusals.append((rule, found))
            if isinstance(found, int):
                if found > furthest and len(refusals) <= _CLOSEST_RULES:  # among those searched
                    furthest = found
            elif specific is None and found.category != "no-match":
                specific = (rule, found)

    if allowed:
        # The loop stops at the first rule allowing it without approval; if none did, all need approval.
        rule = allowed[-1] if not allowed[-1].needs_approval else allowed[0]
        timeout = requested_timeout if requested_timeout is not None else rule.timeout
        approval = rule.rule.approval
        if rule.needs_approval:
            return Decision(False, True, rule.name, f"Rule {rule.name} allows this after approval.",
                            timeout, approval)
        return Decision(True, False, rule.name, f"Allowed by rule {rule.name}.", timeout, approval)

    # Prefer a specific reason over "matches no pattern"; among those, the rule whose pattern came closest
    # (looked for in the first few rules only: a user named in a thousand rules must not make every denial
    # a thousand times slower).
    if specific is not None:
        rule, refusal = specific
    else:
        rule, refusal = _closest_refusal(refusals[:_CLOSEST_RULES], pipeline, furthest)
    others = len(refusals) - 1
    also = f" ({others} other rule{'s' if others > 1 else ''} also refused it)" if others else ""
    return _deny(f"{refusal.part} is refused by rule {rule.name}: {refusal.why}.{also}", refusal,
                 rule=rule.name)


def _closest_refusal(refusals: list[tuple[RuleMatcher, Refusal | int]],
                     pipeline: tuple[SimpleCommand, ...] | Refusal,
                     furthest: int = 0) -> tuple[RuleMatcher, Refusal]:
    """Among "matches no pattern" refusals, the rule whose pattern came closest, its refusal saying so.

    Closest is first the rule that got furthest through the pipeline (``furthest``: the latest command
    some rule found no pattern for): it allowed every command before that one, so the one it refused is
    what the user has to change. `cat LOG | grep -c x` is refused for its `grep -c x` by the rule that
    allows `cat LOG`, not for its `cat LOG` by a rule about other logs. Then, within that command, the
    pattern that read the most words."""
    if not isinstance(pipeline, tuple):
        # It did not parse, so only rules allowing shell syntax can have found no match (their regexes did
        # not match the text): nothing nearer to say.
        rule, refusal = refusals[0]
        assert isinstance(refusal, Refusal)  # an index comes only from a parsed pipeline
        return rule, refusal
    best, best_position = -2, 0
    best_nearest: tuple[int, CompiledPattern | None] | None = None
    for position, (rule, refusal) in enumerate(refusals):
        if isinstance(refusal, int):
            if refusal < furthest:
                continue  # it refused an earlier command, which another rule allows
            simple = pipeline[refusal]
            # A rule that cannot score above the best so far cannot be chosen (a tie goes to the first).
            # (`RuleMatcher.may_beat` inline: one call less per rule searched.)
            if best >= 0 and not (rule.filters if refusal else rule.first).may_beat(simple.words, best):
                continue
            nearest: tuple[int, CompiledPattern | None] | None = rule.nearest(simple, refusal)
        else:
            index = refusal.command_index
            nearest = None if index is None or index >= len(pipeline) else rule.nearest(pipeline[index], index)
        score = -1 if nearest is None else nearest[0]
        if score > best:
            best, best_position, best_nearest = score, position, nearest
    rule, refusal = refusals[best_position]
    return rule, rule.explain(refusal, pipeline, best_nearest)


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


def _no_rule(mine: list[RuleMatcher], on_service: list[RuleMatcher], here: list[RuleMatcher], service: str,
             environment: str | None, container: str | None) -> Decision:
    target = f"`{service}`" + (f" ({environment})" if environment else "")
    if not mine:
        return _deny("No policy rule includes you, so you cannot run commands (deny by default).",
                     Refusal("no-rule", "you", "are in no policy rule"),
                     fix="Ask the bot's admins to add you (or one of your user groups) to a rule.")
    if not on_service:
        return _deny(f"No policy rule lets you run commands on {target}.",
                     Refusal("no-rule", target, "is in none of your rules"))
    if not here:
        if container is None:
            named = sorted({c for r in on_service for c in r.rule.containers})
            return _deny(f"Your rules for {target} reach only the containers {', '.join(named)}, not the "
                         "service's own container.",
                         Refusal("container", "the service's own container", "is in none of your rules"),
                         fix=f"Add --container {named[0]}, or ask the bot's admins for a rule without "
                             "`containers:`.")
        return _deny(f"No policy rule lets you run commands in container `{container}` of {target}; a rule "
                     "reaches only the catalogue's container unless it lists others under `containers:`.",
                     Refusal("container", f"container `{container}`", "is in none of your rules"),
                     fix="Leave out --container, or ask the bot's admins for a rule naming that container.")
    channels = sorted({c for r in here for c in r.channels})
    where = ", ".join(f"<#{c}>" for c in channels[:5])
    return _deny(f"Your rules for {target} apply only in {where}.",
                 Refusal("channel", "this channel", f"is not one of {where}"),
                 fix="Run the command in one of those channels.")


def requested_container(requested: str | None, catalogue: str | None) -> str | None:
    """What ``evaluate`` takes as ``container``: None when the user named none, or the catalogue's own."""
    return None if requested is None or requested == catalogue else requested


def allowed_summary(
    policy: PolicyConfig | None, user_id: str, user_groups: Iterable[str], channel_id: str, *,
    full: bool = False,
) -> list[str]:
    """One line per rule that includes the user: where, what, and conditions (for `/ecs-exec list`).
    Rules limited to other channels are listed too, saying where they apply. ``full``: every pattern
    (the command line has no message length limit)."""
    groups = frozenset(user_groups)
    lines: list[str] = []
    for matcher in policy.rules_for(user_id, groups) if policy is not None else ():
        rule = matcher.rule
        targets: list[str] = []
        if rule.services:
            targets.append("any service" if ANY in rule.services else "services " + ", ".join(rule.services))
        if rule.environments and ANY not in rule.environments:
            targets.append("in " + ", ".join(rule.environments))
        if rule.containers:
            targets.append("containers " + ", ".join(rule.containers))
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
        lines.append(f"{rule.name}: {' '.join(targets) or 'any service'}: {rule.describe_patterns(full=full)}{extra}")
    return lines


def may_use_service(
    policy: PolicyConfig | None, user_id: str, user_groups: Iterable[str], service_alias: str,
    environment: str | None, *, channel_id: str | None = None,
) -> bool:
    """Some rule lets the user run commands on the service (with or without approval), in ``channel_id``
    when one is given: who may see how a service is set up (doctor) or filter a run's kept output."""
    if policy is None:
        return False
    return any(
        m.includes_service(service_alias, environment) and (channel_id is None or m.includes_channel(channel_id))
        for m in policy.rules_for(user_id, frozenset(user_groups))
    )


# -- what the command builder offers (a guide: the submission is decided by `evaluate`, like any request) --


@dataclass(frozen=True)
class OfferedPattern:
    """One command pattern a rule grants, as the builder lists it."""

    text: str  # as `/ecs-exec list` shows it
    prefix: str  # the words it names literally at its start (`bot.command_patterns.literal_prefix`)
    needs_approval: bool  # every rule offering it needs approval


def _builder_rules(
    policy: PolicyConfig | None, user_id: str, user_groups: Iterable[str], channel_id: str | None
) -> list[RuleMatcher]:
    # The builder never adds --container, so only rules reaching the catalogue's container count.
    mine = policy.rules_for(user_id, frozenset(user_groups)) if policy is not None else []
    return [r for r in mine if (channel_id is None or r.includes_channel(channel_id)) and r.includes_container(None)]


def services_offered(
    policy: PolicyConfig | None, user_id: str, user_groups: Iterable[str], channel_id: str | None,
    catalogue: Iterable[tuple[str, str | None]],
) -> list[str]:
    """The catalogue's services (``(alias, environment)``) some rule lets this user run commands on from
    ``channel_id`` (None: from any channel), in catalogue order."""
    rules = _builder_rules(policy, user_id, user_groups, channel_id)
    return [alias for alias, env in catalogue if any(r.includes_service(alias, env) for r in rules)]


def patterns_offered(
    policy: PolicyConfig | None, user_id: str, user_groups: Iterable[str], channel_id: str | None,
    service_alias: str, environment: str | None,
) -> list[OfferedPattern]:
    """The command patterns this user's rules grant on one service from ``channel_id`` (None: any), in
    file order, each once."""
    from bot.command_patterns import literal_prefix

    offered: dict[str, OfferedPattern] = {}
    for rule in _builder_rules(policy, user_id, user_groups, channel_id):
        if not rule.includes_service(service_alias, environment):
            continue
        for pattern in rule.patterns:
            text = pattern.describe()
            seen = offered.get(text)
            approval = rule.needs_approval and (seen is None or seen.needs_approval)
            offered[text] = OfferedPattern(text, literal_prefix(pattern), approval)
    return list(offered.values())
