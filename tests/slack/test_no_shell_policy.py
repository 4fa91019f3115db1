"""A service without a shell (catalogue `shell: false`) never gets a pipeline: the agent would pass `|` on."""

from __future__ import annotations

from types import SimpleNamespace

from bot.commands import parse_command_text
from bot.policy import parse_policy
from bot.runs.intake import decide as decide_request
from bot.service_ref import ServiceRef

POLICY = parse_policy({"rules": [{"name": "oncall", "users": ["U0ALICE"], "services": ["*"],
                                  "commands": [{"argv": ["cat", "**"]}, {"argv": ["grep", "**"]}]}]})


def decide(shell: bool, text: str):  # type: ignore[no-untyped-def]
    config = SimpleNamespace(policy=POLICY)
    ref = ServiceRef(name="svc", environment="prod", cluster="c", service="s", shell=shell)
    return decide_request(config, user="U0ALICE", groups=frozenset(), channel="C0OPS", ref=ref,  # type: ignore[arg-type]
                          req=parse_command_text(f"svc {text}"))  # type: ignore[arg-type]


def test_a_pipe_is_allowed_where_there_is_a_shell() -> None:
    assert decide(True, "cat a.log | grep x").allowed


def test_a_pipe_is_refused_where_there_is_no_shell() -> None:
    decision = decide(False, "cat a.log | grep x")
    assert not decision.allowed and not decision.needs_approval


def test_a_simple_command_is_still_allowed_without_a_shell() -> None:
    assert decide(False, "cat a.log").allowed


def test_a_denial_explains_deny_by_default_and_shows_the_closest_rule_in_full() -> None:
    denied = decide(True, "rm -rf /")  # bot.runs.intake.decide, as the Slack handlers call it
    assert not denied.allowed and not denied.needs_approval
    fix = denied.fix or ""
    assert fix.startswith("Deny by default: only what a policy rule allows runs.") and fix.count("Deny by default") == 1
    assert "Rule oncall: any service: `cat **`, `grep **`" in fix and "/ecs-exec list" in fix
