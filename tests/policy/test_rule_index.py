"""``evaluate`` looks only at the rules its index gives for the request's user, groups and service; that
must be exactly the rules the earlier code found by checking every rule naming the user. A regex that
starts with a program name is only tried on that program's commands; it must match nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.command_patterns import RegexPattern
from bot.policy import PolicyConfig, RuleMatcher, parse_policy
from tests.policy.test_hostile import HOSTILE, ORDINARY
from tests.support.commands import accepted_pipeline

USERS = ["U0A", "U0B", "U0C"]
GROUPS = ["S0X", "S0Y"]
SERVICES = ["web", "api", "db"]
ENVIRONMENTS = ["prod", "staging"]
CHANNELS = ["C0ONE", "C0TWO"]
CONTAINERS = ["app", "envoy"]


def reference_candidates(policy: PolicyConfig, user: str, groups: frozenset[str], service: str,
                         environment: str | None, container: str | None, channel: str) -> list[RuleMatcher]:
    """The earlier code: every rule naming the user or a group, then its three filters."""
    mine = [r.matcher for r in policy.rules if r.matcher.includes_user(user, groups)]
    return [r for r in mine if r.includes_service(service, environment) and r.includes_container(container)
            and r.includes_channel(channel)]


def _some(values: list[str], star: bool = False) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values + (["*"] if star else [])), max_size=len(values), unique=True)


@st.composite
def policies(draw: st.DrawFn) -> PolicyConfig:
    rules: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 8))):
        services, environments = draw(_some(SERVICES, star=True)), draw(_some(ENVIRONMENTS, star=True))
        users, groups = draw(_some(USERS)), draw(_some(GROUPS))
        rules.append({
            "name": f"r{n}", "users": users or ([] if groups else USERS[:1]), "groups": groups,
            "services": services or ([] if environments else ["*"]), "environments": environments,
            "channels": draw(_some(CHANNELS)), "containers": draw(_some(CONTAINERS, star=True)),
            "commands": [{"argv": ["uptime"]}],
        })
    return parse_policy({"rules": rules})


@settings(max_examples=300, deadline=None)
@given(policies(), st.sampled_from(USERS + ["U0NOBODY"]), _some(GROUPS + ["S0NONE"]),
       st.sampled_from(SERVICES + ["other"]), st.sampled_from([*ENVIRONMENTS, None]),
       st.sampled_from([*CONTAINERS, None]), st.sampled_from(CHANNELS))
def test_the_index_finds_the_rules_checking_every_rule_finds(
    policy: PolicyConfig, user: str, groups: list[str], service: str, environment: str | None,
    container: str | None, channel: str,
) -> None:
    index = policy._rule_index()
    reaches = index.reaches(user, frozenset(groups))
    expected = reference_candidates(policy, user, frozenset(groups), service, environment, container, channel)
    assert list(index.candidates(reaches, service, environment, container, channel)) == expected
    assert index.rules_of(reaches) == [r.matcher for r in policy.rules
                                       if r.matcher.includes_user(user, frozenset(groups))]


@pytest.mark.parametrize(("source", "program"), [
    ("^curl -s http://localhost:8000/health$", "curl"),
    ("^uptime$", "uptime"),
    ("uptime", "uptime"),
    ("^df -h( /[a-z/]*)?$", "df"),
    ("^grep -c [a-z]+$", "grep"),
    ("^journal-ctl -n [0-9]+$", "journal-ctl"),
    # Anything less plain may match more than one program.
    ("(?i)^curl -s x", None),  # CURL
    ("^curl -s x|^wget -q y", None),
    ("^cu.l -s x", None),
    ("^curl *-s", None),  # "curl-s"
    ("^curlx? -s", None),  # "curl -s"
    ("^ab{2} x", None),
    ("^/bin/cat x", None),
    ("^\\w+ x", None),
    ("(?x)^curl -s", None),  # the space means nothing: "curl-s"
    ("^uptime\n", None),
])
def test_a_regex_names_its_program_only_when_it_plainly_does(source: str, program: str | None) -> None:
    assert RegexPattern(source).programs == (None if program is None else frozenset({program}))


REGEXES = ["^curl -s http://localhost:8000/health$", "^uptime$", "^df -h( /[a-z/]*)?$", "^grep -c [a-z]+$",
           "^ls -la( /[a-z]*)?$", "^cat .*$", "^echo .*", "^ps aux$"]
WORDS = ["curl", "-s", "http://localhost:8000/health", "uptime", "df", "-h", "/var", "grep", "-c", "x", "ls",
         "-la", "cat", "echo", "'curl'", '"uptime"', "cu\\rl", "ps", "aux", "/bin/cat", "a*", "CURL"]


def _assert_program_holds(text: str) -> None:
    pipeline = accepted_pipeline(text)
    if pipeline is None:
        return
    for simple in pipeline:
        for source in REGEXES:
            pattern = RegexPattern(source)
            assert pattern.programs is not None
            if simple.words[0].value not in pattern.programs:
                assert not pattern.match(simple).matched, (source, text)
                assert pattern.match(simple).refusal is None


def test_a_regex_with_a_program_matches_no_other_program_in_the_corpora() -> None:
    for text in [c for c, _ in HOSTILE] + ORDINARY:
        _assert_program_holds(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=5))
def test_a_regex_with_a_program_matches_no_other_program(words: list[str]) -> None:
    _assert_program_holds(" ".join(words))
