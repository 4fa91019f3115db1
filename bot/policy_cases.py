"""Policy test cases: the file an operator keeps next to the policy, and running it (`policy test`).

    cases:
      - name: on-call reads the nginx log        # optional, shown when the case fails
        user: U0ALICE
        groups: [S0ONCALL]                       # the user's Slack user groups (default none)
        channel: C0INCIDENT
        service: web                             # a catalogue alias
        container: envoy                         # optional: --container (default: the catalogue's)
        timeout: 60                              # optional: --timeout in seconds
        command: tail -n 100 /var/log/nginx/access.log
        expect: allow                            # allow | deny | needs-approval
        rule: oncall-read-logs                   # optional: the rule that decides (allows, or refuses)

Pure: the caller reads the files; ``run_cases`` only evaluates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError
from bot.policy import Decision, PolicyConfig, evaluate, requested_container

Expectation = Literal["allow", "deny", "needs-approval"]
_OUTCOME = {"allowed": "allow", "denied": "deny", "needs_approval": "needs-approval"}


class PolicyCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    user: str
    groups: tuple[str, ...] = ()
    channel: str
    service: str
    environment: str | None = None
    container: str | None = None
    timeout: int | None = Field(default=None, ge=1)
    command: str = Field(min_length=1)
    expect: Expectation
    rule: str | None = None


class PolicyCases(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cases: tuple[PolicyCase, ...] = Field(min_length=1)


def parse_cases(data: Any, source: str, line_of: Callable[[tuple[str | int, ...]], int | None]) -> PolicyCases:
    """Validate a cases document; errors are one ``ConfigError`` naming the file and line."""
    try:
        return PolicyCases.model_validate(data if data is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line = line_of(loc)
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        where = f"{source}, line {line}" if line else source
        raise ConfigError(f"Invalid test cases {where}: {dotted}: {msg}.",
                          fix="Fix the cases file (see `ecs-exec-bot policy test --help`).") from None


@dataclass(frozen=True)
class CaseResult:
    case: PolicyCase
    line: int | None
    decision: Decision

    @property
    def outcome(self) -> str:
        return _OUTCOME[self.decision.outcome]

    @property
    def passed(self) -> bool:
        return self.outcome == self.case.expect and (self.case.rule is None or self.case.rule == self.decision.rule)

    def report(self, source: str) -> str:
        """One failure, as `policy test` prints it."""
        case = self.case
        label = f" ({case.name})" if case.name else ""
        where = f"{source}, line {self.line}" if self.line else source
        want = case.expect + (f" by rule {case.rule}" if case.rule else "")
        got = self.outcome + (f" by rule {self.decision.rule}" if self.decision.rule else "")
        return (f"FAIL {where}{label}: `{case.command}` by {case.user} in {case.channel} on {case.service}: "
                f"expected {want}, got {got}: {self.decision.reason}")


def run_cases(cases: PolicyCases, policy: PolicyConfig | None, *, environments: Mapping[str, str],
              no_shell: frozenset[str], catalogue_containers: Mapping[str, str | None],
              line_of: Callable[[tuple[str | int, ...]], int | None]) -> list[CaseResult]:
    results: list[CaseResult] = []
    for index, case in enumerate(cases.cases):
        decision = evaluate(
            policy, user_id=case.user, user_groups=case.groups, channel_id=case.channel,
            service_alias=case.service, environment=case.environment or environments.get(case.service),
            command=case.command, requested_timeout=case.timeout, shell_available=case.service not in no_shell,
            container=requested_container(case.container, catalogue_containers.get(case.service)),
        )
        results.append(CaseResult(case, line_of(("cases", index)), decision))
    return results
