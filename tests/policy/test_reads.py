"""``reads``: the regex each word matcher gives the closest-pattern search's bound must match every word
the matcher accepts (it may match more: that only costs time), and exactly those for an ``exact`` matcher
(the automaton then matches with it). Too narrow, and a denial would name the
wrong closest pattern, so each matcher kind is held to it on random words, user globs and odd paths
included; and it is narrow enough to skip the rules it is there to skip."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.argv_matchers import (
    AnyWord,
    FlagMatcher,
    GlobMatcher,
    IntMatcher,
    OneOfMatcher,
    PathMatcher,
    WordMatcher,
)
from bot.command_patterns import ArgvPattern, TypedPattern
from bot.shell_syntax import WILD_QMARK, WILD_STAR, Word

MANY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words of every shape the matchers tell apart: options, numbers, paths with `//`, `/./`, `..`, a trailing
# `/`, dotfiles, newlines, and the markers of globs the user typed unquoted.
ALPHABET = "-/.*?a1cinvz0\n" + WILD_STAR + WILD_QMARK
words = st.one_of(
    st.text(alphabet=ALPHABET, max_size=10),
    st.sampled_from(["", "/", "//", "-", "--", "--count", "-civ", "-r", "10", "-5", "007", "1e9",
                     "/var/log/a.log", "/var/log//a.log", "/var/./log/a.log", "/var/log/", "/var/log/.a",
                     "./x", ".", "a/b", "/var/log/" + WILD_STAR, "/var/log/a" + WILD_QMARK, "x\ny"]),
)

GLOBS = ["*", "a*", "-*", "--lines=*", "/var/log/*", "/var/**", "?", "[ab]*", "a\\*", "grep", "-n"]
PATHS = ["/var/log/*", "/var/**", "/var/log/*.log", "/var/log/.a", "/", "/**", "a/*", "/var/*/a?"]
matchers = st.one_of(
    st.tuples(st.integers(-50, 50), st.integers(0, 10**6)).map(lambda b: IntMatcher(min(b), max(b))),
    st.sampled_from(["-cinv", "-a", "--count", "-civz"]).map(FlagMatcher.parse),
    st.lists(st.sampled_from(["--count", "--help"]), min_size=1, unique=True).map(FlagMatcher.parse),
    st.lists(st.sampled_from(["a", "-n", "10", "x\ny", "a.b"]), min_size=1).map(OneOfMatcher.parse),
    st.sampled_from(PATHS).map(PathMatcher.parse),
    st.sampled_from(GLOBS).map(lambda g: TypedPattern(["x", g, {"int": {"max": 1}}]).readers(1)[0]),
)


def read_by(matcher: WordMatcher, value: str) -> bool:
    reads = matcher.reads()
    return reads is None or re.fullmatch(reads, value, re.DOTALL) is not None


@MANY
@given(matchers, words)
def test_every_word_a_matcher_accepts_is_read_by_its_regex(matcher: WordMatcher, value: str) -> None:
    accepted = matcher.accepts(Word(value, value))
    if accepted:
        assert read_by(matcher, value), (matcher, value)
    if matcher.exact:  # the automaton matches with the regex instead of `accepts`: it must be the same
        assert read_by(matcher, value) == accepted, (matcher, value)


@MANY
@given(st.sampled_from(GLOBS), words)
def test_a_plain_glob_word_is_read_by_its_regex_when_it_matches(glob: str, value: str) -> None:
    unit = ArgvPattern(["x", glob]).words[1]
    if unit.matches(value):
        assert re.fullmatch(unit.reads(), value, re.DOTALL) is not None, (glob, value)


def test_any_word_reads_anything() -> None:
    assert AnyWord().reads() is None


def test_the_regexes_are_narrow_enough_to_skip_what_the_search_skips() -> None:
    assert not read_by(PathMatcher.parse("/var/log/app5/*"), "/etc/shadow")
    assert not read_by(PathMatcher.parse("/var/log/app5/*"), "-r")
    assert not read_by(FlagMatcher.parse("-cinv"), "-r")
    assert not read_by(IntMatcher(1, 10), "ten")
    assert not read_by(OneOfMatcher.parse(["a", "b"]), "c")
    star = TypedPattern(["grep", "*", {"int": {"max": 1}}]).readers(1)[0]
    assert isinstance(star, GlobMatcher) and not read_by(star, "-r") and read_by(star, "error")


def test_edge_words_each_matcher_accepts_are_read() -> None:
    cases: list[tuple[WordMatcher, str]] = [
        (IntMatcher(-5, 5), "-5"), (IntMatcher(0, 10), "007"), (FlagMatcher.parse(["-ci", "--count"]), "--count"),
        (FlagMatcher.parse("-ci"), "-icic"), (OneOfMatcher.parse(["x\ny"]), "x\ny"),
        (PathMatcher.parse("/var/log/*"), "/var//log/./a/"), (PathMatcher.parse("/"), "/"),
        (PathMatcher.parse("/var/log/*"), "/var/log/" + WILD_STAR),
    ]
    for matcher, value in cases:
        assert matcher.accepts(Word(value, value)), (matcher, value)
        assert read_by(matcher, value), (matcher, value)
