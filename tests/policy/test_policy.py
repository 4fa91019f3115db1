"""Policy tables: loading (shapes, regexes, rule names in errors) and decisions (who, where, what)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import parse_config
from bot.errors import ConfigError
from bot.policy import ApprovalRule, Decision, PolicyConfig, allowed_summary, evaluate, parse_policy
from tests.policy.rulesets import ALICE, BOB, INCIDENT, MALLORY, ONCALL, RANDOM, SRE


def rule(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "r1",
        "users": [ALICE],
        "services": ["web"],
        "commands": [{"argv": ["uptime"]}],
    }
    base.update(over)
    return base


def policy(*rules: dict[str, Any]) -> PolicyConfig:
    return parse_policy({"rules": list(rules)})


def decide(p: PolicyConfig | None, command: str = "uptime", **over: Any) -> Decision:
    kw: dict[str, Any] = {
        "user_id": ALICE, "user_groups": [], "channel_id": INCIDENT, "service_alias": "web",
        "environment": "prod", "command": command,
    }
    kw.update(over)
    return evaluate(p, **kw)


# -- loading ---------------------------------------------------------------------------------------------

BAD_RULES = [
    (rule(users=["alice"]), "rule 'r1': user 'alice' is not a Slack user ID"),
    (rule(users=["C0CHAN"]), "is not a Slack user ID"),
    (rule(groups=["U0ALICE"]), "rule 'r1': group 'U0ALICE' is not a Slack user group ID"),
    (rule(channels=["#ops"]), "rule 'r1': channel '#ops' is not a Slack channel ID"),
    (rule(users=[], groups=[]), "rule 'r1': name at least one of `users:` or `groups:`"),
    (rule(services=[]), "rule 'r1': name `environments:` and/or `services:`"),
    (rule(services=["web app"]), "service 'web app' is not a valid name"),
    (rule(commands=[]), "at least 1 item"),
    (rule(commands=[{"argv": ["ls"], "regex": "ls"}]), "exactly one of `argv:` or `regex:`"),
    (rule(commands=[{}]), "exactly one of `argv:` or `regex:`"),
    (rule(commands=[{"regex": "^(unclosed$"}]), "rules.0.commands.0: invalid regex"),
    (rule(commands=[{"argv": []}]), "rules.0.commands.0: an argv pattern needs at least one word"),
    (rule(commands=[{"argv": ["ls", "**", "x"]}]), "`**` (any remaining words) can only be the last"),
    (rule(commands=[{"argv": ["**"]}]), "the program (first argv word) cannot be `**`"),
    (rule(commands=[{"argv": ["ls", ""]}]), "must be a non-empty string"),
    (rule(allow_shell_syntax=True), "rule 'r1': command 1: allow_shell_syntax rules match the whole text"),
    (rule(timeout=0), "greater than or equal to 1"),
    (rule(timeout=5000), "less than or equal to 1190"),
    (rule(approval={"approvers": {}}), "rule 'r1': approval is required but names no approvers"),
    (rule(approval={"approvers": {"users": [BOB]}, "min_approvals": 2}), "min_approvals is larger"),
    (rule(approval={"approvers": {"users": ["bob"]}}), "rule 'r1': approver 'bob' is not a Slack user ID"),
    (rule(approval={"approvers": {"groups": ["sre"]}}), "approver group 'sre' is not a Slack user group"),
    (rule(approval={"approvers": {"users": [BOB]}, "ttl": 5}), "greater than or equal to 60"),
    (rule(aproval={}), "Extra inputs are not permitted"),
    (rule(name="has space"), "rule name 'has space' must be"),
]


@pytest.mark.parametrize(("data", "needle"), BAD_RULES, ids=[n[:40] for _, n in BAD_RULES])
def test_invalid_rules_are_config_errors(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        policy(data)
    assert needle in info.value.message


def test_duplicate_rule_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="'r1' is used twice"):
        policy(rule(), rule())


def test_redact_patterns_are_validated() -> None:
    ok = parse_policy({"redact": [{"name": "internal-token", "pattern": "itk_[A-Za-z0-9]{32}"}]})
    assert ok.redact[0].name == "internal-token"
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        parse_policy({"redact": [{"name": "bad", "pattern": "("}]})
    with pytest.raises(ConfigError, match="matches the empty string"):
        parse_policy({"redact": [{"name": "empty", "pattern": "x*"}]})


CONFIG = """\
environments:
  prod: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web-nginx}
policy:
  rules:
    - name: ok
      users: [U0ALICE]
      services: [web]
      commands: [{argv: [uptime]}]
    - name: oncall-logs
      users: [U0ALICE]
      environments: [prod]
      commands:
        - regex: '^tail -n [0-9{1,5}$'
"""


def test_config_file_errors_name_the_file_line_and_rule() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG, source="bot.yaml")
    message = info.value.message
    assert "bot.yaml, line 15" in message  # the pattern's own line
    assert "policy.rules.1.commands.0: rule 'oncall-logs': invalid regex" in message


def test_config_file_loads_the_policy_model() -> None:
    config = parse_config(CONFIG.replace("[0-9{1,5}", "[0-9]{1,5}"), source="bot.yaml")
    assert isinstance(config.policy, PolicyConfig)
    assert [r.name for r in config.policy.rules] == ["ok", "oncall-logs"]


# -- who and where ---------------------------------------------------------------------------------------


def test_no_policy_denies_everything() -> None:
    assert decide(None).outcome == "denied"
    assert decide(parse_policy({})).outcome == "denied"


WHO_WHERE = [
    # (rule overrides, request overrides, outcome, refusal category)
    ({}, {}, "allowed", None),
    ({}, {"user_id": MALLORY}, "denied", "no-rule"),
    ({"users": [], "groups": [ONCALL]}, {"user_groups": [ONCALL]}, "allowed", None),
    ({"users": [], "groups": [ONCALL]}, {"user_groups": ["S0OTHER"]}, "denied", "no-rule"),
    ({"users": ["W0GRID"]}, {"user_id": "W0GRID"}, "allowed", None),
    ({"channels": [INCIDENT]}, {}, "allowed", None),
    ({"channels": [INCIDENT]}, {"channel_id": RANDOM}, "denied", "channel"),
    ({"services": ["api"]}, {}, "denied", "no-rule"),
    ({"services": ["*"]}, {"service_alias": "anything"}, "allowed", None),
    ({"services": [], "environments": ["prod"]}, {}, "allowed", None),
    ({"services": [], "environments": ["prod"]}, {"environment": "staging"}, "denied", "no-rule"),
    ({"services": [], "environments": ["prod"]}, {"environment": None}, "denied", "no-rule"),
    # both given: both must match
    ({"services": ["web"], "environments": ["staging"]}, {}, "denied", "no-rule"),
    ({"services": ["web"], "environments": ["prod"]}, {}, "allowed", None),
    ({"services": ["web"], "environments": ["*"]}, {"environment": None}, "allowed", None),
]


@pytest.mark.parametrize(("rule_over", "req_over", "outcome", "category"), WHO_WHERE)
def test_who_and_where(rule_over: dict[str, Any], req_over: dict[str, Any], outcome: str,
                       category: str | None) -> None:
    decision = decide(policy(rule(**rule_over)), **req_over)
    assert decision.outcome == outcome, decision.reason
    assert (decision.refusal.category if decision.refusal else None) == category


def test_denials_for_who_and_where_say_what_to_do() -> None:
    p = policy(rule(channels=[INCIDENT]))
    nobody = decide(p, user_id=MALLORY)
    assert "No policy rule includes you" in nobody.reason and "admins" in (nobody.fix or "")
    elsewhere = decide(p, service_alias="api")
    assert elsewhere.reason == "No policy rule lets you run commands on `api` (prod)."
    wrong_channel = decide(p, channel_id=RANDOM)
    assert wrong_channel.reason == f"Your rules for `web` (prod) apply only in <#{INCIDENT}>."
    assert wrong_channel.to_error().user_text().endswith("Run the command in one of those channels.")


# -- what: argv and regex patterns -----------------------------------------------------------------------

PATTERNS = [
    # (pattern, command, allowed)
    ({"argv": ["cat", "/var/log/nginx/*"]}, "cat /var/log/nginx/access.log", True),
    ({"argv": ["cat", "/var/log/nginx/*"]}, "cat '/var/log/nginx/access.log'", True),
    ({"argv": ["cat", "/var/log/nginx/*"]}, "cat /var/log/nginx/*.log", True),  # the shell expands it there
    ({"argv": ["cat", "/var/log/nginx/*"]}, "cat /var/log/nginx/sub/access.log", False),  # `*` stops at `/`
    ({"argv": ["cat", "/var/log/nginx/*"]}, "cat /var/log/nginx/", True),  # `*` may be empty
    ({"argv": ["cat", "/var/log/nginx/*"]}, "cat /var/log/nginx/a /var/log/nginx/b", False),
    ({"argv": ["cat", "/var/log/nginx/*"]}, "cat", False),
    ({"argv": ["cat", "/var/log/nginx/**"]}, "cat /var/log/nginx/sub/access.log", True),  # `**` crosses `/`
    ({"argv": ["cat", "/var/log/nginx/**"]}, "cat /var/log/nginx/sub/../../../../etc/shadow", False),
    ({"argv": ["cat", "/var/log/nginx/*.log"]}, "cat /var/log/nginx/*", False),  # could expand to non-.log
    ({"argv": ["cat", "/var/log/nginx/*.log"]}, "cat /var/log/nginx/a*.log", True),
    ({"argv": ["cat", "/var/log/nginx/?.log"]}, "cat /var/log/nginx/a.log", True),
    ({"argv": ["cat", "/var/log/nginx/?.log"]}, "cat /var/log/nginx/?.log", False),  # a user glob needs `*`
    ({"argv": ["cat", "/var/log/nginx/access.log"]}, "cat /var/log/nginx/acces?.log", False),
    ({"argv": ["cat", "/var/log/[an]*"]}, "cat /var/log/nginx", True),
    ({"argv": ["cat", "/var/log/[!n]*"]}, "cat /var/log/nginx", False),
    ({"argv": ["cat", "/var/log/[an]*"]}, "cat /var/log/[n]ginx", False),  # user brackets are refused
    ({"argv": ["echo", "\\*"]}, "echo '*'", True),  # a pattern's `\*` is a literal star ...
    ({"argv": ["echo", "\\*"]}, "echo *", False),  # ... which a glob the shell expands is not
    ({"argv": ["echo", "*"]}, "echo ./*", False),  # `*` does not cross `/`
    ({"argv": ["ls", "**"]}, "ls", True),  # `**` is zero or more words
    ({"argv": ["ls", "**"]}, "ls -la /tmp /var", True),
    ({"argv": ["ls", "-la"]}, "ls  -la", True),
    ({"argv": ["ls", "-la"]}, "ls -la -R", False),
    ({"argv": ["ls", "-la"]}, "ls '-la'", True),  # quoting does not change the word
    ({"argv": ["sh", "-c", "uptime"]}, "sh -c uptime", True),  # named literally: allowed
    ({"argv": ["sh", "-c", "*"]}, "sh -c uptime", True),
    ({"argv": ["*", "-c", "uptime"]}, "sh -c uptime", False),  # `sh` only by a literal
    ({"argv": ["find", "/srv", "-exec", "**"]}, "find /srv -exec ls", True),
    ({"argv": ["find", "/srv", "**"]}, "find /srv -exec ls", False),
    ({"argv": ["awk", "*", "/x"]}, "awk '{print $1}' /x", True),
    ({"argv": ["awk", "*", "/x"]}, "awk 'BEGIN{system(\"id\")}' /x", False),
    ({"argv": ["awk", "{system(\"id\")}", "/x"]}, "awk '{system(\"id\")}' /x", True),
    ({"argv": ["env", "**"]}, "env X=1 ls", True),
    # a wildcard word matches an option only when the pattern word starts with `-`
    ({"argv": ["grep", "*", "/x"]}, "grep error /x", True),
    ({"argv": ["grep", "*", "/x"]}, "grep -r /x", False),
    ({"argv": ["grep", "*", "/x"]}, "grep --file=x /x", False),
    ({"argv": ["grep", "-*", "/x"]}, "grep -r /x", True),
    ({"argv": ["grep", "-e", "*", "/x"]}, "grep -e -v /x", False),
    ({"argv": ["grep", "-e", "-*", "/x"]}, "grep -e -v /x", True),
    ({"argv": ["tail", "--lines=*", "/x"]}, "tail --lines=5 /x", True),
    ({"argv": ["ls", "**"]}, "ls -R", True),  # `**` is "anything", options included
    ({"argv": ["cat", "*"]}, "cat ..", False),
    ({"argv": ["cat", ".."]}, "cat ..", True),  # a literal `..` is the rule's own choice
    # regexes see the words normalized: quoting does not matter, spacing does not either
    ({"regex": "^tail -n [0-9]{1,5} /var/log/nginx/[a-z.]+$"}, "tail -n 100 /var/log/nginx/error.log", True),
    ({"regex": "^tail -n [0-9]{1,5} /var/log/nginx/[a-z.]+$"}, "tail  -n '100'  /var/log/nginx/error.log", True),
    ({"regex": "^tail -n [0-9]{1,5} /var/log/nginx/[a-z.]+$"}, "tail -n 100 /var/log/nginx/..", False),
    ({"regex": "^tail -n [0-9]{1,5} /var/log/nginx/[a-z.]+$"}, "tail -n 100 /var/log/nginx/e*", False),
    ({"regex": "grep 'a b' /x"}, 'grep "a b" /x', True),
    ({"regex": "grep a b /x"}, 'grep "a b" /x', False),  # one word is not two
    ({"regex": "uptime"}, "uptime now", False),  # full match
    ({"regex": "[a-z]+ .*"}, "sh -c id", False),  # dangerous words must appear in the regex
    ({"regex": "sh -c [a-z]+"}, "sh -c id", True),
]


@pytest.mark.parametrize(("pattern", "command", "allowed"), PATTERNS,
                         ids=[f"{p}-{c}"[:70] for p, c, _ in PATTERNS])
def test_command_patterns(pattern: dict[str, Any], command: str, allowed: bool) -> None:
    decision = decide(policy(rule(commands=[pattern])), command)
    assert decision.allowed is allowed, decision.reason


def test_pipes_need_every_part_allowed() -> None:
    p = policy(rule(commands=[{"argv": ["ps", "aux"]}, {"argv": ["grep", "*"]}]))
    assert decide(p, "ps aux | grep nginx").allowed
    assert decide(p, "ps aux|grep nginx").allowed
    assert not decide(p, "ps aux | grep nginx | sh").allowed
    assert not decide(p, "ps aux | wc -l").allowed


def test_shell_rules_match_the_whole_text() -> None:
    p = policy(rule(allow_shell_syntax=True, commands=[{"regex": r"ps aux \| sort -k3 -nr \| head -n 5"},
                                                      {"regex": r"cd /srv && ls( -la)?"}]))
    assert decide(p, "ps aux | sort -k3 -nr | head -n 5").allowed
    assert decide(p, "cd /srv && ls -la").allowed
    assert not decide(p, "cd /srv && ls -la; id").allowed
    # Lookalikes and control characters are refused even here; newlines are shell syntax, so allowed.
    assert decide(p, "cd /srv &\uff06 ls").refusal.category == "lookalike"  # type: ignore[union-attr]
    newline = policy(rule(allow_shell_syntax=True, commands=[{"regex": "(?s).*"}]))
    assert decide(newline, "echo a\necho b").allowed
    assert not decide(newline, "echo a\x00").allowed


# -- timeouts, approvals, rule choice --------------------------------------------------------------------


def test_timeout_is_the_requested_one_within_the_rule() -> None:
    p = policy(rule(timeout=30))
    assert decide(p).timeout == 30
    assert decide(p, requested_timeout=10).timeout == 10
    too_long = decide(p, requested_timeout=31)
    assert too_long.outcome == "denied" and too_long.refusal is not None
    assert too_long.refusal.category == "timeout" and "--timeout 30 or less" in too_long.reason
    assert decide(policy(rule()), requested_timeout=600).timeout == 600  # rule without a cap


def test_approval_decision_carries_the_approval_rule() -> None:
    approval = {"approvers": {"users": [BOB], "groups": [SRE]}, "min_approvals": 2, "ttl": 600}
    decision = decide(policy(rule(approval=approval)))
    assert decision.outcome == "needs_approval"
    assert not decision.allowed  # never runnable without the approval
    assert decision.approval == ApprovalRule.model_validate(approval)
    assert decision.rule == "r1" and decision.approval.ttl == 600


def test_approval_not_required_is_plain_allow() -> None:
    decision = decide(policy(rule(approval={"required": False})))
    assert decision.outcome == "allowed"


def test_a_rule_without_approval_wins_over_one_with() -> None:
    approval = {"approvers": {"users": [BOB]}}
    p = policy(rule(name="broad", approval=approval, commands=[{"argv": ["*"]}]),
               rule(name="narrow", commands=[{"argv": ["uptime"]}]))
    assert decide(p).rule == "narrow"
    assert decide(p).outcome == "allowed"
    assert decide(p, "df").rule == "broad"
    assert decide(p, "df").outcome == "needs_approval"


def test_first_rule_wins_among_equals() -> None:
    p = policy(rule(name="a"), rule(name="b"))
    assert decide(p).rule == "a"


def test_denial_prefers_a_specific_reason_and_counts_other_rules() -> None:
    p = policy(rule(name="a", commands=[{"argv": ["uptime"]}]),
               rule(name="b", commands=[{"argv": ["cat", "**"]}]))
    decision = decide(p, "cat /var/log/../../etc/shadow")
    assert decision.rule == "b" and decision.refusal is not None
    assert decision.refusal.category == "traversal"
    assert decision.reason.endswith("(1 other rule also refused it)")


APPROVER_TABLE = [
    # (approval, approver, approver groups, requester, may approve)
    ({"approvers": {"users": [BOB]}}, BOB, [], ALICE, True),
    ({"approvers": {"users": [BOB]}}, MALLORY, [], ALICE, False),
    ({"approvers": {"groups": [SRE]}}, MALLORY, [SRE], ALICE, True),
    ({"approvers": {"groups": [SRE]}}, ALICE, [SRE], ALICE, False),  # no self-approval by default
    ({"approvers": {"groups": [SRE]}, "allow_self_approval": True}, ALICE, [SRE], ALICE, True),
]


@pytest.mark.parametrize(("approval", "approver", "groups", "requester", "may"), APPROVER_TABLE)
def test_who_may_approve(approval: dict[str, Any], approver: str, groups: list[str], requester: str,
                         may: bool) -> None:
    assert ApprovalRule.model_validate(approval).may_approve(approver, groups, requester) is may


# -- /ecs-exec list --------------------------------------------------------------------------------------


def test_allowed_summary_lists_what_and_where() -> None:
    p = policy(
        rule(name="logs", users=[], groups=[ONCALL], services=[], environments=["prod"], timeout=30,
             commands=[{"argv": ["cat", "/var/log/nginx/*"]}, {"regex": "^uptime$"}],
             approval={"approvers": {"users": [BOB]}}),
        rule(name="incident-only", channels=[INCIDENT], services=["web", "api"]),
        rule(name="not-mine", users=[BOB]),
    )
    lines = allowed_summary(p, ALICE, [ONCALL], RANDOM)
    assert lines == [
        "logs: in prod: `cat /var/log/nginx/*`, regex `^uptime$` (timeout ≤ 30 s; needs 1 approval)",
        f"incident-only: services web, api: `uptime` (only in <#{INCIDENT}>)",
    ]
    assert allowed_summary(p, ALICE, [], INCIDENT) == ["incident-only: services web, api: `uptime`"]
    assert allowed_summary(p, MALLORY, [], INCIDENT) == []
    assert allowed_summary(None, ALICE, [], INCIDENT) == []


def test_rule_membership_helpers_used_by_the_handlers() -> None:
    p = policy(rule(users=[], groups=[ONCALL], channels=[INCIDENT], services=["web"], environments=["prod"]))
    (r,) = p.rules
    assert r.includes_user(ALICE, [ONCALL]) and not r.includes_user(ALICE, [SRE])
    assert r.includes_channel(INCIDENT) and not r.includes_channel(RANDOM)
    assert r.includes_service("web", "prod") and not r.includes_service("web", "staging")
    assert [m.name for m in p.rules_for(ALICE, frozenset({ONCALL}))] == ["r1"]
    assert p.rules_for(ALICE, frozenset()) == []


def test_pipes_are_refused_when_the_container_has_no_shell() -> None:
    p = policy(rule(commands=[{"argv": ["ps", "aux"]}, {"argv": ["grep", "*"]}]))
    assert decide(p, "ps aux | grep nginx", shell_available=True).allowed
    no_shell = decide(p, "ps aux | grep nginx", shell_available=False)
    assert no_shell.refusal is not None and no_shell.refusal.category == "no-shell"
    assert no_shell.reason.startswith("`|` (after `ps aux`) is refused by rule r1: this container has no shell")
    assert decide(p, "ps aux", shell_available=False).allowed


def test_timeout_ceiling_agrees_with_the_catalogue() -> None:
    from bot import config
    from bot import policy as policy_module

    assert policy_module.MAX_TIMEOUT_S == config.MAX_TIMEOUT_S
