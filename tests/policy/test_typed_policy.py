"""Typed matchers, positions, containers and the closest-pattern explanation, through the policy file
and ``evaluate``; config errors name the line."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bot.commands import parse_command_text
from bot.config import parse_config
from bot.errors import ConfigError
from bot.output.render import render_error
from bot.policy import evaluate, parse_policy, requested_container

REQUEST: dict[str, Any] = {"user_id": "U0ALICE", "user_groups": [], "channel_id": "C0OPS",
                           "service_alias": "web", "environment": "prod"}


def rule(*commands: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"rules": [{"name": "r1", "users": ["U0ALICE"], "services": ["*"], "commands": list(commands), **extra}]}


def outcome(policy_data: dict[str, Any], command: str, **over: Any) -> str:
    return evaluate(parse_policy(policy_data), command=command, **{**REQUEST, **over}).outcome


# -- the examples ----------------------------------------------------------------------------------

LS = rule({"argv": ["ls", {"flags": "-la"}, {"path": "/app"}]})
TAIL = rule({"argv": ["tail", "-n", {"int": {"min": 1, "max": 10000}}, {"path": "/var/log/nginx/*"}]})
GREP = rule({"argv": ["grep", {"flags": "-cinv"}, "*", {"path": "/var/log/nginx/*.log"}]})


@pytest.mark.parametrize(("data", "command", "expected"), [
    (LS, "ls /app", "allowed"), (LS, "ls -l /app/", "allowed"), (LS, "ls -a -l /app", "allowed"),
    (LS, "ls -la /app", "allowed"), (LS, "ls -al /app//", "allowed"), (LS, "ls -R /app", "denied"),
    (LS, "ls /app/..", "denied"), (LS, "ls /app/x", "denied"),
    (TAIL, "tail -n 10 /var/log/nginx/a.log", "allowed"), (TAIL, "tail -n 10f /var/log/nginx/a.log", "denied"),
    (TAIL, "tail -n 1e9 /var/log/nginx/a.log", "denied"), (TAIL, "tail -n 0 /var/log/nginx/a.log", "denied"),
    (TAIL, "tail -n 10001 /var/log/nginx/a.log", "denied"), (TAIL, "tail -n -5 /var/log/nginx/a.log", "denied"),
    (TAIL, "tail -n 5 /var/log/nginx/.htpasswd", "denied"), (TAIL, "tail -n 5 /var/log/nginx/", "denied"),
    (TAIL, "tail -n 5 /var/log/nginx/*", "allowed"),
    (GREP, "grep -ic x /var/log/nginx/a.log", "allowed"), (GREP, "grep -i -c x /var/log/nginx/a.log", "allowed"),
    (GREP, "grep -n x /var/log/nginx/a.log", "allowed"), (GREP, "grep x /var/log/nginx/a.log", "allowed"),
    (GREP, "grep -r x /var/log/nginx/a.log", "denied"), (GREP, "grep -ir x /var/log/nginx/a.log", "denied"),
])
def test_typed_matchers_mean_what_they_say(data: dict[str, Any], command: str, expected: str) -> None:
    assert outcome(data, command) == expected


def test_flag_letters_that_spell_a_dangerous_option_are_still_refused() -> None:
    data = rule({"argv": ["find", {"path": "/var/log"}, {"flags": "-cex"}]})
    decision = evaluate(parse_policy(data), command="find /var/log -exec", **REQUEST)
    assert decision.refusal is not None and decision.refusal.category == "dangerous"


def test_one_of_optional_repeat_and_seq() -> None:
    data = rule({"argv": ["ps", {"one_of": ["aux", "-ef"]}]},
                {"argv": ["cat", {"path": "/var/log/app/*.log", "repeat": True}]},
                {"argv": ["head", {"seq": ["-n", {"int": {"min": 1, "max": 9}}], "optional": True}, {"path": "/x/*"}]})
    assert outcome(data, "ps aux") == outcome(data, "ps -ef") == "allowed"
    assert outcome(data, "ps auxe") == outcome(data, "ps") == "denied"
    assert outcome(data, "cat /var/log/app/a.log /var/log/app/b.log") == "allowed"
    assert outcome(data, "cat") == "denied"
    assert outcome(data, "head /x/a") == outcome(data, "head -n 3 /x/a") == "allowed"
    assert outcome(data, "head -n /x/a") == "denied"


def test_position_first_and_filter() -> None:
    data = rule({"argv": ["cat", {"path": "/x/*"}], "position": "first"},
                {"argv": ["sort"], "position": "filter"}, {"argv": ["wc", "-l"]})
    assert outcome(data, "cat /x/a | sort") == "allowed"
    assert outcome(data, "sort") == "denied"
    assert outcome(data, "cat /x/a | cat /x/b") == "denied"
    assert outcome(data, "wc -l | wc -l") == "allowed"  # `any` is today's meaning


# -- containers ------------------------------------------------------------------------------------------


def test_a_rule_reaches_the_catalogue_container_only_unless_it_names_others() -> None:
    plain = rule({"argv": ["uptime"]})
    sidecar = rule({"argv": ["uptime"]}, containers=["envoy"])
    anywhere = rule({"argv": ["uptime"]}, containers=["*"])
    assert outcome(plain, "uptime") == "allowed"
    assert outcome(plain, "uptime", container="envoy") == "denied"
    assert outcome(sidecar, "uptime", container="envoy") == "allowed"
    assert outcome(sidecar, "uptime") == "denied"
    assert outcome(anywhere, "uptime", container="datadog") == outcome(anywhere, "uptime") == "allowed"
    assert requested_container(None, "nginx") is None
    assert requested_container("nginx", "nginx") is None
    assert requested_container("envoy", "nginx") == "envoy"


def test_the_slack_path_passes_the_requested_container() -> None:
    from bot.service_ref import ServiceRef
    from handlers.commands import CommandRequest, _decide

    services = SimpleNamespace(config=SimpleNamespace(policy=parse_policy(rule({"argv": ["uptime"]}))))
    cmd = CommandRequest(user="U0ALICE", channel="C0OPS", text="x", dedupe_key="k")
    ref = ServiceRef(name="web", environment="prod", cluster="c", service="s", container="nginx")
    for text, allowed in (("web uptime", True), ("web --container nginx uptime", True),
                          ("web --container envoy uptime", False)):
        decision = _decide(services, cmd, parse_command_text(text), ref, frozenset(), "member")  # type: ignore[arg-type]
        assert decision.allowed is allowed, text


# -- closest pattern --------------------------------------------------------------------------------------


def test_the_denial_slack_shows_names_the_closest_pattern_word_expected_and_given() -> None:
    data = {"rules": [
        {"name": "a", "users": ["U0ALICE"], "services": ["*"], "commands": [{"argv": ["uptime"]}]},
        {"name": "b", "users": ["U0ALICE"], "services": ["*"], "commands": [
            {"argv": ["cat", "/etc/hosts"]}, TAIL["rules"][0]["commands"][0]]},
    ]}
    decision = evaluate(parse_policy(data), command="tail -n 10f /var/log/nginx/a.log", **REQUEST)
    assert decision.rule == "b"  # the rule whose pattern came closest, not the first one
    closest = decision.refusal.closest if decision.refusal else None
    assert closest is not None and (closest.word, closest.given) == (3, "`10f`")
    assert closest.expected == "an integer from 1 to 10000"
    slack = render_error(decision.to_error())
    assert "word 3 should be an integer from 1 to 10000, given `10f`" in str(slack)


def test_in_a_pipeline_the_closest_is_the_rule_that_allowed_the_most_of_it() -> None:
    # Rule "app" comes first and its `cat` pattern reads more words of `cat LOG` than any pattern of
    # "nginx" reads of `grep -c x`; but "nginx" allows the `cat LOG`, so the part to change is the grep.
    data = {"rules": [
        {"name": "app", "users": ["U0ALICE"], "services": ["*"], "commands": [{"argv": ["cat", "/var/log/app/*"]}]},
        {"name": "nginx", "users": ["U0ALICE"], "services": ["*"], "commands": [
            {"argv": ["cat", "/var/log/nginx/*"]}, {"argv": ["wc", "-l"]}]},
    ]}
    decision = evaluate(parse_policy(data), command="cat /var/log/nginx/a.log | grep -c x", **REQUEST)
    assert decision.rule == "nginx" and decision.refusal is not None
    assert decision.refusal.part == "`grep -c x`" and decision.refusal.command_index == 1
    assert decision.reason.startswith("`grep -c x` is refused by rule nginx")
    # With the pipeline's first command refused by both, the closest pattern decides, as for one command.
    decision = evaluate(parse_policy(data), command="cat /var/log/app/x/y | grep -c x", **REQUEST)
    assert decision.rule == "app" and decision.refusal is not None and decision.refusal.command_index == 0


# -- config errors ---------------------------------------------------------------------------------------

CONFIG = """\
environments:
  prod: {region: us-east-1}
policy:
  rules:
    - name: r1
      users: [U0ALICE]
      environments: [prod]
      commands:
        - argv: [uptime]
        - PATTERN
"""


@pytest.mark.parametrize(("pattern", "needle"), [
    ("regex: '(a+)+$'", "could take exponential time (a repeat inside an unbounded repeat)"),
    ("regex: '(x)\\1'", "could take exponential time (back-reference)"),
    ("argv: [tail, {integer: {max: 5}}]", "unknown key `integer`"),
    ("argv: [tail, {int: {max: 5}, path: /x}]", "needs exactly one of int, flags, path, one_of, glob, seq"),
    ("argv: [tail, {int: {min: 9, max: 5}}]", "`int` has min 9 above max 5"),
    ("argv: [grep, {flags: 'c,i'}]", "neither short flags"),
    ("argv: [cat, {path: /var/log/../etc}]", "has a `..` segment"),
    ("argv: [cat, {path: /var/l**g}]", "`**` must be a whole segment"),
    ("argv: [{flags: -l}, /x]", "the program (first argv word) must be required"),
    ("argv: [sort]\n          position: last", "line 11: policy.rules.0.commands.1.position"),
])
def test_pattern_errors_name_the_file_line_and_rule(pattern: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG.replace("PATTERN", pattern), source="bot.yaml")
    message = info.value.message
    assert "bot.yaml, line 1" in message and "rule 'r1'" in message, message
    assert "position" in pattern or "line 10: policy.rules.0.commands.1:" in message, message
    assert needle in message, message


def test_position_means_nothing_with_shell_syntax() -> None:
    with pytest.raises(ConfigError, match="position"):
        parse_policy(rule({"regex": "uptime", "position": "filter"}, allow_shell_syntax=True))
