"""Who may run a runbook: every step as if typed, or a rule granting it by name; approval once."""

from __future__ import annotations

import pytest

from bot.commands import HELP_TEXT, USAGE, RunbookRequest, parse_command_text
from bot.config import BotConfig, parse_config
from bot.errors import PolicyDenied, UsageError
from bot.runbooks import RunbookDecision, RunbookPlan, decide_runbook, find_runbook, recheck_plan
from bot.service_ref import resolve_service_ref

CONFIG = """\
environments:
  prod: {region: us-east-1}
services:
  api: {environment: prod, cluster: prod, service: api, timeout: 45}
  web: {environment: prod, cluster: prod, service: web-nginx}
policy:
  rules:
    - name: oncall
      users: [U0ALICE]
      channels: [C0INCIDENT]
      services: [api, web]
      commands:
        - argv: ["cat", "*"]
        - argv: ["df", "-h"]
      timeout: 30
    - name: dba
      users: [U0ALICE]
      services: [api]
      commands:
        - argv: ["printenv"]
      approval:
        approvers: {users: [U0BOB]}
    - name: release
      groups: [S0RELEASE]
      services: [api]
      commands:
        - argv: ["true"]
      runbooks: [release-check]
runbooks:
  diag:
    services: [api, web]
    steps:
      - {name: health, command: cat health.txt, timeout: 10}
      - {name: disk, command: df -h}
  env:
    services: [api]
    steps:
      - {name: health, command: cat health.txt}
      - {name: env, command: printenv}
  release-check:
    services: [api]
    tasks: one
    steps:
      - {name: version, command: cat VERSION}
      - {name: env, command: printenv}
  guarded:
    services: [api]
    steps:
      - {name: health, command: cat health.txt}
    approval:
      approvers: {users: [U0CAROL]}
"""


@pytest.fixture(scope="module")
def config() -> BotConfig:
    return parse_config(CONFIG, source="bot.yaml")


def _decide(config: BotConfig, name: str, *, user: str = "U0ALICE", groups: frozenset[str] = frozenset(),
            channel: str = "C0INCIDENT", service: str | None = None) -> RunbookDecision:
    book, alias = find_runbook(config.runbooks, name, service)
    ref = resolve_service_ref(config, alias)
    return decide_runbook(config.policy, book, name, user=user, groups=groups, channel=channel, ref=ref)


def test_every_step_allowed_as_if_typed_runs_with_each_step_s_timeout(config: BotConfig) -> None:
    d = _decide(config, "diag", service="api")
    assert d.allowed and not d.needs_approval and d.plan is not None
    assert [(s.name, s.timeout) for s in d.plan.steps] == [("health", 10), ("disk", 30)]  # step's, else the rule's
    assert d.plan.all_tasks and d.plan.total_timeout == 40


def test_a_refused_step_is_named_with_the_policy_s_reason(config: BotConfig) -> None:
    d = _decide(config, "diag", service="api", channel="C0RANDOM")
    assert not d.allowed and not d.needs_approval and d.refused_step == "health"
    assert d.reason.startswith("Step 1 `health` of runbook `diag` is refused")
    stranger = _decide(config, "diag", service="api", user="U0MALLORY")
    assert stranger.refused_step == "health" and "No policy rule includes you" in stranger.reason


def test_a_step_needing_approval_makes_the_whole_runbook_need_one_approval(config: BotConfig) -> None:
    d = _decide(config, "env")
    assert d.needs_approval and not d.allowed and d.rule == "dba"
    assert d.approval is not None and d.approval.approvers.users == ("U0BOB",)


def test_a_rule_granting_the_runbook_by_name_allows_steps_it_does_not_list(config: BotConfig) -> None:
    d = _decide(config, "release-check", user="U0DAVE", groups=frozenset({"S0RELEASE"}), channel="C0ANY")
    assert d.allowed and d.rule == "release" and d.plan is not None and not d.plan.all_tasks
    assert [s.timeout for s in d.plan.steps] == [45, 45]  # the service's, the rule sets none
    # ...but only to the rule's members
    assert not _decide(config, "release-check", user="U0DAVE").allowed


def test_the_runbook_s_own_approval_applies(config: BotConfig) -> None:
    d = _decide(config, "guarded")
    assert d.needs_approval and d.approval is not None and d.approval.approvers.users == ("U0CAROL",)


def test_unknown_runbook_and_service_choices_are_refused_with_the_fix(config: BotConfig) -> None:
    with pytest.raises(PolicyDenied, match="There is no runbook `nope`"):
        find_runbook(config.runbooks, "nope", None)
    with pytest.raises(PolicyDenied, match="runs on several services .*say which"):
        find_runbook(config.runbooks, "diag", None)
    with pytest.raises(PolicyDenied, match="does not run on `web`"):
        find_runbook(config.runbooks, "env", "web")


def test_an_approved_plan_is_checked_again_against_today_s_policy(config: BotConfig) -> None:
    d = _decide(config, "env")
    assert d.plan is not None
    plan = RunbookPlan.from_json(d.plan.to_json())
    assert plan == d.plan
    kwargs = dict(groups=frozenset(), channel="C0INCIDENT", service="api", environment="prod", shell=True)
    assert recheck_plan(config.policy, plan, user="U0ALICE", **kwargs).needs_approval  # type: ignore[arg-type]
    assert not recheck_plan(config.policy, plan, user="U0MALLORY", **kwargs).needs_approval  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [
    ("run diag", RunbookRequest(runbook="diag")),
    ("run diag api", RunbookRequest(runbook="diag", service="api")),
    ("RUN release-check  api ", RunbookRequest(runbook="release-check", service="api")),
])
def test_run_is_parsed(text: str, expected: RunbookRequest) -> None:
    assert parse_command_text(text) == expected


@pytest.mark.parametrize(("text", "words"), [
    ("run", "`run` takes a runbook"),
    ("run a b c", "`run` takes a runbook"),
    ("run 'bad name'", "not a valid runbook name"),
    ("run diag list", "is a subcommand"),
])
def test_bad_run_requests_get_the_usage(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_command_text(text)


def test_run_is_no_longer_a_service_name_and_help_mentions_runbooks() -> None:
    with pytest.raises(UsageError, match="subcommand"):
        parse_command_text("--task abc run echo hi")  # `run` as a service name
    assert "/ecs-exec run RUNBOOK [SERVICE]" in HELP_TEXT and "run RUNBOOK" in USAGE
