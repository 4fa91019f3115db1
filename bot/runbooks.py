"""Runbooks: named, reviewed bundles of diagnostic steps (the `runbooks:` section of the config file).

A runbook cannot do what its steps could not: each step is checked by the policy as if the requester had
typed it, unless a rule grants the runbook by name (a rule's ``runbooks: [name]``). The loader refuses a
runbook whose step no rule could ever allow on one of its services, so a runbook that can only ever be
refused never reaches a channel.

Pure: models, the load-time checks, the request-time decision and the extractors. Running a runbook is
`bot.runs.runbook`; its report is `bot.output.runbook_report`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from bot.errors import ConfigError, PolicyDenied
from bot.policy import MAX_TIMEOUT_S, ApprovalRule, Decision, evaluate
from bot.regex_shapes import check_pattern

if TYPE_CHECKING:
    from bot.service_ref import ServiceRef

RUNBOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
# The report is a task × step table within one Slack message (see bot/output/runbook_report.py).
MAX_STEPS = 8
MAX_VALUE_CHARS = 80  # an extracted value is a table cell, not an output
_LIST_FIX = "Run `/ecs-exec list` to see what you may run, and where."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Extractor(_Strict):
    """Turns a step's (redacted) output into one value for the table: ``regex`` (the first match, its
    first group if it has one; ``^``/``$`` match at each line) or ``count`` (how many lines match).
    Redacted output only, so an extractor can never lift a secret into the table."""

    regex: str | None = None
    count: str | None = None

    _compiled: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_and_safe(self) -> Extractor:
        if (self.regex is None) == (self.count is None):
            raise ValueError("an extractor needs exactly one of `regex:` or `count:`")
        pattern = self.regex if self.regex is not None else self.count
        try:
            # The same guard as redaction patterns: a backtracking regex over 8 MiB of output hangs the bot.
            self._compiled = check_pattern("extract", pattern or "")
        except ConfigError as exc:
            # check_pattern speaks of redaction patterns; say which pattern this is.
            raise ValueError(exc.message.replace("Redaction pattern 'extract'", "the extractor's regex")
                             .rstrip(".")) from None
        return self

    def apply(self, text: str) -> str:
        """The value shown for ``text``: ``—`` when a regex finds nothing."""
        assert self._compiled is not None  # set by the validator
        pattern = re.compile(self._compiled.pattern, self._compiled.flags | re.MULTILINE)
        if self.count is not None:
            return str(sum(1 for line in text.splitlines() if pattern.search(line)))
        match = pattern.search(text)
        if match is None:
            return "—"
        value = match.group(1) if pattern.groups else match.group(0)
        value = " ".join((value or "").split())
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


class RunbookStep(_Strict):
    name: str
    command: str = Field(min_length=1, max_length=4000)
    timeout: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S)  # None: the rule's, else the service's
    extract: Extractor | None = None

    @model_validator(mode="after")
    def _name(self) -> RunbookStep:
        if not STEP_NAME.match(self.name):
            raise ValueError(f"step name {self.name!r} must be letters, digits, `-`, `_` or `.` (at most 32)")
        if not self.command.strip():
            raise ValueError(f"step {self.name!r}: the command is empty")
        return self


class Runbook(_Strict):
    description: str = ""
    services: tuple[str, ...] = Field(min_length=1)
    tasks: Literal["all", "one"] = "all"  # `all` is capped by fanout.max_tasks
    steps: tuple[RunbookStep, ...] = Field(min_length=1, max_length=MAX_STEPS)
    approval: ApprovalRule | None = None

    @model_validator(mode="after")
    def _unique_steps(self) -> Runbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(f"step name {step.name!r} is used twice; names must be unique")
            seen.add(step.name)
        if self.approval is not None and self.approval.required and not (
            self.approval.approvers.users or self.approval.approvers.groups
        ):
            raise ValueError("approval is required but names no approvers")
        return self


def check_runbook_name(name: str) -> None:
    if not RUNBOOK_NAME.match(name):
        raise ValueError(f"runbook name {name!r} must be letters, digits, `-`, `_` or `.` (at most 64)")


# -- load-time checks ---------------------------------------------------------------------------------------

Problem = tuple[tuple[str | int, ...], str]  # (location in the file, what is wrong)


class _Catalogue(Protocol):
    """What the checks need from `bot.config.BotConfig` (which imports this module)."""

    @property
    def services(self) -> Mapping[str, Any]: ...
    @property
    def policy(self) -> Any: ...
    @property
    def runbooks(self) -> Mapping[str, Runbook]: ...

    def environment_of(self, service: Any) -> str: ...


def runbook_problems(config: _Catalogue) -> Iterator[Problem]:
    """Every runbook problem the loader must refuse, with where it is; the first is reported."""
    rules = tuple(getattr(config.policy, "rules", ()) or ())
    for index, rule in enumerate(rules):
        for position, name in enumerate(getattr(rule, "runbooks", ())):
            if name not in config.runbooks:
                known = ", ".join(sorted(config.runbooks)) or "none defined"
                yield (("policy", "rules", index, "runbooks", position),
                       f"unknown runbook {name!r} (known: {known})")
    for name, book in config.runbooks.items():
        try:
            check_runbook_name(name)
        except ValueError as exc:
            yield ("runbooks", name), str(exc)
        for position, alias in enumerate(book.services):
            svc = config.services.get(alias)
            if svc is None:
                known = ", ".join(sorted(config.services)) or "none defined"
                yield ("runbooks", name, "services", position), f"unknown service {alias!r} (known: {known})"
                continue
            if any(name in getattr(r, "runbooks", ()) and r.includes_service(alias, config.environment_of(svc))
                   for r in rules):
                continue  # granted by name on this service
            for number, step in enumerate(book.steps):
                if not _some_rule_allows(config, alias, svc, step):
                    yield (("runbooks", name, "steps", number, "command"),
                           f"step {step.name!r} (`{step.command[:80]}`) is allowed by no policy rule on "
                           f"service {alias!r}; allow it in a rule or grant the runbook with `runbooks: [{name}]`")


def _some_rule_allows(config: _Catalogue, alias: str, svc: Any, step: RunbookStep) -> bool:
    """Could anyone ever run this step here? Asks `evaluate` as each rule's own members would."""
    environment = config.environment_of(svc)
    for rule in getattr(config.policy, "rules", ()) or ():
        decision = evaluate(
            config.policy,
            user_id=rule.users[0] if rule.users else "U0RUNBOOKPROBE",
            user_groups=rule.groups,
            channel_id=rule.channels[0] if rule.channels else "C0RUNBOOKPROBE",
            service_alias=alias,
            environment=environment,
            command=step.command,
            requested_timeout=step.timeout,
            shell_available=bool(getattr(svc, "shell", True)),
        )
        if decision.allowed or decision.needs_approval:
            return True
    return False


# -- the plan: what runs, as stored with an approval ---------------------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    name: str
    command: str
    timeout: float
    extract: Extractor | None = None


@dataclass(frozen=True)
class RunbookPlan:
    """A runbook as it will run (timeouts settled by the policy). Stored in an approval's record and
    rebuilt from it, never from today's file: what was approved is what runs."""

    name: str
    steps: tuple[PlannedStep, ...]
    all_tasks: bool

    @property
    def total_timeout(self) -> float:
        return sum(s.timeout for s in self.steps)

    def describe(self) -> str:
        """The run's `command` (shown on the approval card and in the audit): the runbook and its steps."""
        lines = [f"runbook {self.name}"] + [f"{n}. {s.name}: {s.command}" for n, s in enumerate(self.steps, 1)]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name, "all_tasks": self.all_tasks,
            "steps": [{"name": s.name, "command": s.command, "timeout": s.timeout,
                       "extract": s.extract.model_dump(exclude_none=True) if s.extract else None}
                      for s in self.steps],
        }, sort_keys=True)  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> RunbookPlan:
        data = json.loads(text)
        return cls(
            name=str(data["name"]),
            all_tasks=bool(data["all_tasks"]),
            steps=tuple(
                PlannedStep(str(s["name"]), str(s["command"]), float(s["timeout"]),
                            Extractor.model_validate(s["extract"]) if s.get("extract") else None)
                for s in data["steps"]
            ),
        )


# -- the request-time decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunbookDecision:
    """Like `bot.policy.Decision`, for a whole runbook: ``refused_step`` names the step that was refused."""

    allowed: bool
    needs_approval: bool
    rule: str | None
    reason: str
    approval: ApprovalRule | None
    plan: RunbookPlan | None = None
    refused_step: str | None = None
    fix: str | None = None

    def to_error(self) -> PolicyDenied:
        return PolicyDenied(self.reason, fix=self.fix)


def find_runbook(runbooks: Mapping[str, Runbook], name: str, service: str | None) -> tuple[Runbook, str]:
    """The runbook and the service it runs on (the only one it names when none is given); `PolicyDenied`
    with the fix otherwise (a runbook is policy: an unknown one is refused, never guessed)."""
    book = runbooks.get(name)
    if book is None:
        known = ", ".join(f"`{n}`" for n in sorted(runbooks)) or "none are configured"
        raise PolicyDenied(f"There is no runbook `{name}` (known: {known}).", fix=_LIST_FIX)
    if service is None:
        if len(book.services) > 1:
            choices = ", ".join(f"`{s}`" for s in book.services)
            raise PolicyDenied(f"Runbook `{name}` runs on several services ({choices}); say which.",
                               fix=f"Example: `/ecs-exec run {name} {book.services[0]}`")
        return book, book.services[0]
    if service not in book.services:
        choices = ", ".join(f"`{s}`" for s in book.services)
        raise PolicyDenied(f"Runbook `{name}` does not run on `{service}` (only on {choices}).",
                           fix=f"Example: `/ecs-exec run {name} {book.services[0]}`")
    return book, service


def decide_runbook(
    policy: Any, book: Runbook, name: str, *, user: str, groups: frozenset[str], channel: str, ref: ServiceRef
) -> RunbookDecision:
    """Deny by default: a rule that grants the runbook by name, or every step allowed as if typed."""
    steps = [(s.name, s.command, s.timeout) for s in book.steps]
    decision, timeouts = _decide_steps(policy, name, steps, user=user, groups=groups, channel=channel,
                                       service=ref.name, environment=ref.environment, shell=ref.shell,
                                       default_timeout=ref.timeout)
    if timeouts is None:
        return decision
    plan = RunbookPlan(
        name=name,
        steps=tuple(PlannedStep(s.name, s.command, t, s.extract) for s, t in zip(book.steps, timeouts, strict=True)),
        all_tasks=book.tasks == "all",
    )
    # The runbook's own approval applies on top of the policy's (the policy's approvers win if both ask).
    if not decision.needs_approval and book.approval is not None and book.approval.required:
        return RunbookDecision(False, True, decision.rule, f"Runbook {name} runs after approval.", book.approval,
                               plan)
    return replace(decision, plan=plan)


def recheck_plan(
    policy: Any, plan: RunbookPlan, *, user: str, groups: frozenset[str], channel: str, service: str,
    environment: str | None, shell: bool,
) -> RunbookDecision:
    """An approved plan, against the policy in force now (a rule removed since must not be bypassed)."""
    steps = [(s.name, s.command, int(s.timeout)) for s in plan.steps]
    decision, _ = _decide_steps(policy, plan.name, steps, user=user, groups=groups, channel=channel,
                                service=service, environment=environment, shell=shell, default_timeout=None)
    return decision


def _decide_steps(
    policy: Any, name: str, steps: Sequence[tuple[str, str, int | None]], *, user: str, groups: frozenset[str],
    channel: str, service: str, environment: str | None, shell: bool, default_timeout: int | None,
) -> tuple[RunbookDecision, list[float] | None]:
    granting = [
        r for r in (getattr(policy, "rules", ()) or ())
        if name in getattr(r, "runbooks", ()) and r.includes_user(user, groups)
        and r.includes_service(service, environment) and r.includes_channel(channel)
    ]
    if granting:
        rule = next((r for r in granting if not r.needs_approval), granting[0])
        timeouts = [float(t or rule.timeout or default_timeout or 60) for _, _, t in steps]
        if rule.needs_approval:
            return RunbookDecision(False, True, rule.name, f"Runbook {name} runs after approval.",
                                   rule.approval), timeouts
        return RunbookDecision(True, False, rule.name, f"Runbook {name} is granted by rule {rule.name}.",
                               None), timeouts
    decisions: list[Decision] = []
    for number, (step, command, timeout) in enumerate(steps, start=1):
        d = evaluate(policy, user_id=user, user_groups=groups, channel_id=channel, service_alias=service,
                     environment=environment, command=command, requested_timeout=timeout,
                     shell_available=shell)
        if not (d.allowed or d.needs_approval):
            return RunbookDecision(
                False, False, d.rule, f"Step {number} `{step}` of runbook `{name}` is refused: {d.reason}",
                None, refused_step=step, fix=d.fix or _LIST_FIX,
            ), None
        decisions.append(d)
    pending = next((d for d in decisions if d.needs_approval), None)
    timeouts = [float(d.timeout or default_timeout or 60) for d in decisions]
    rules = sorted({d.rule for d in decisions if d.rule})
    if pending is not None:
        return RunbookDecision(False, True, pending.rule, f"Runbook {name} runs after approval.",
                               pending.approval), timeouts
    why = f"Every step of runbook {name} is allowed (rules {', '.join(rules)})."
    return RunbookDecision(True, False, rules[0] if rules else None, why, None), timeouts


def runbook_summary(runbooks: Mapping[str, Runbook], policy: Any, *, user: str, groups: frozenset[str],
                    channel: str, refs: Mapping[str, ServiceRef]) -> list[str]:
    """One line per runbook and service this user may run here (for `/ecs-exec list`): what it runs and
    whether it needs approval. Runbooks the user may not run are not listed (deny by default)."""
    lines: list[str] = []
    for name, book in sorted(runbooks.items()):
        for alias in book.services:
            ref = refs.get(alias)
            if ref is None:
                continue
            d = decide_runbook(policy, book, name, user=user, groups=groups, channel=channel, ref=ref)
            if not (d.allowed or d.needs_approval):
                continue
            steps = ", ".join(s.name for s in book.steps)
            extra = " (needs approval)" if d.needs_approval else ""
            lines.append(f"runbook {name}: `/ecs-exec run {name} {alias}` runs {steps} on "
                         f"{'every task' if book.tasks == 'all' else 'one task'}{extra}")
    return lines
