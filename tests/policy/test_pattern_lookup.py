"""A rule tries only the patterns that can concern a command's program (``PatternsByProgram``); its
answers must be exactly those of trying every pattern in file order, as the rule did before: the same
allow, the same first refusal, the same closest pattern and score for a denial, and a score bound that
is never below the score.

The reference functions below are that earlier code, kept here as the specification."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.command_patterns import CompiledPattern, position_allows
from bot.policy import PolicyConfig, RuleMatcher, parse_policy
from bot.shell_syntax import Refusal, SimpleCommand
from tests.policy.rulesets import permissive, typed
from tests.policy.test_hostile import HOSTILE, ORDINARY
from tests.support.commands import accepted_pipeline


def reference_check(rule: RuleMatcher, simple: SimpleCommand, index: int) -> tuple[bool, Refusal | None]:
    first_refusal: Refusal | None = None
    for pattern in rule.patterns:
        if not position_allows(pattern.position, index):
            continue
        outcome = pattern.match(simple)
        if outcome.matched:
            return True, None
        first_refusal = first_refusal or outcome.refusal
    return False, first_refusal


def reference_nearest(rule: RuleMatcher, simple: SimpleCommand, index: int) -> tuple[int, CompiledPattern | None]:
    best: tuple[int, CompiledPattern | None] = (-1, None)
    for pattern in rule.patterns:
        if not position_allows(pattern.position, index):
            if pattern.match(simple).matched:
                return len(simple.words) + 1, pattern
            continue
        score = pattern.score(simple)
        if score > best[0]:
            best = (score, pattern)
    return best


# Patterns at every place, several per program, globs and regexes in command position, one_of programs.
MIXED = parse_policy({"rules": [{
    "name": "mixed", "users": ["U0ALICE"], "services": ["*"],
    "commands": [
        {"regex": "^grep -c [a-z]+$", "position": "filter"},
        {"argv": ["grep", "*", "/var/log/*"]},
        {"argv": ["grep", "-c", "*"], "position": "filter"},
        {"argv": ["cat", "/var/log/*"], "position": "first"},
        {"argv": ["c?t", "/etc/*"]},
        {"argv": ["tail", {"seq": ["-n", {"int": {"min": 1, "max": 100}}], "optional": True}, "/var/log/*"]},
        {"argv": [{"one_of": ["head", "tail"]}, "-n", {"int": {"min": 1, "max": 9}}], "position": "filter"},
        {"argv": ["sort", {"flags": "-rn"}], "position": "filter"},
        {"argv": ["ls", "**"], "position": "first"},
        {"regex": "^uptime$"},
        {"argv": ["wc", "-l"]},
    ],
}]})


def _matchers() -> list[RuleMatcher]:
    policies: list[PolicyConfig] = [permissive(), typed(), MIXED]
    return [rule.matcher for policy in policies for rule in policy.rules]


MATCHERS = _matchers()


def _assert_same(text: str) -> None:
    pipeline = accepted_pipeline(text)
    if pipeline is None:
        return
    for simple in pipeline:
        for index in (0, 1):
            for rule in MATCHERS:
                # The command alone, checked as if at `index` of a pipeline (first, or after a `|`).
                found = rule.check(simple.source, (simple,), start=index)
                matched, first_refusal = reference_check(rule, simple, index)
                assert (found is None) == matched, (rule.name, text, index)
                if first_refusal is not None:
                    assert found == first_refusal, (rule.name, text, index)
                elif not matched:
                    assert found == index  # "no pattern matches the command at this index"
                nearest = rule.nearest(simple, index)
                assert nearest == reference_nearest(rule, simple, index), (rule.name, text)
                if found == index:  # the closest-pattern search may skip a rule that cannot do better
                    for best in range(len(simple.words) + 2):
                        if not rule.may_beat(simple, index, best):
                            assert nearest[0] <= best, (rule.name, text, index, best)


def test_the_corpora_decide_as_trying_every_pattern() -> None:
    for text in [c for c, _ in HOSTILE] + ORDINARY + [
        "grep -c error", "grep -c 5", "head -n 5", "tail -n 50 /var/log/x", "cat /etc/x", "cut /etc/x",
        "ls", "ls -la /", "wc -l", "sort -rn", "sort -x", "uptime", "nothing here", "cat", "grep",
    ]:
        _assert_same(text)


WORDS = ["grep", "cat", "cut", "tail", "head", "ls", "sort", "wc", "uptime", "-c", "-n", "-l", "-rn", "5",
         "100", "error", "/var/log/x", "/var/log/nginx/access.log", "/etc/x", "**", "a*", "-la", "|", "ps", "aux"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
def test_random_commands_decide_as_trying_every_pattern(words: list[str]) -> None:
    _assert_same(" ".join(words))
