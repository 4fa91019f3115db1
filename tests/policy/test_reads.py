"""``reads``: where a word matcher gives a regex, the automaton and the closest-pattern search test words
with it instead of calling ``accepts``, so it must match exactly the words the matcher accepts. Held to
that on random words (options, numbers, odd paths, newlines, the markers of unquoted user globs) for
every kind that has one; integers have none (only Python compares them). A path's regex reads the word
as typed, so it is held to "normalise, then match" on words full of `/`, `.` and `..` segments."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.argv_matchers import (
    AnyWord,
    FlagMatcher,
    IntMatcher,
    OneOfMatcher,
    PathMatcher,
    WordMatcher,
)
from bot.command_patterns import ArgvPattern, TypedPattern
from bot.shell_syntax import WILD_QMARK, WILD_STAR, Word

MANY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALPHABET = "-/.*?a1cinvz0\n" + WILD_STAR + WILD_QMARK
words = st.one_of(
    st.text(alphabet=ALPHABET, max_size=10),
    st.sampled_from(["", "/", "//", "-", "--", "--count", "-civ", "-r", "10", "-5", "007", "1e9", "x\ny",
                     "/var/log/a.log", "/var/log/", "/var/log/.a", "a", "a.b", "-n", "--help", "-ic\n",
                     "/var/log/" + WILD_STAR, "/var/log/a" + WILD_QMARK, WILD_STAR, "a" + WILD_STAR]),
)

GLOBS = ["*", "a*", "-*", "--lines=*", "/var/log/*", "/var/**", "?", "[ab]*", "[!a]", "a\\*", "grep", "-n",
         "x\ny"]
matchers = st.one_of(
    st.sampled_from(["-cinv", "-a", "--count", "-civz"]).map(FlagMatcher.parse),
    st.lists(st.sampled_from(["--count", "--help"]), min_size=1, unique=True).map(FlagMatcher.parse),
    st.lists(st.sampled_from(["a", "-n", "10", "x\ny", "a.b", "a*"]), min_size=1).map(OneOfMatcher.parse),
    st.sampled_from(GLOBS).map(lambda g: TypedPattern(["x", g, {"int": {"max": 1}}]).readers(1)[0]),
    st.just(AnyWord()),
)


@MANY
@given(matchers, words)
def test_a_matchers_regex_reads_exactly_what_it_accepts(matcher: WordMatcher, value: str) -> None:
    reads = matcher.reads()
    assert reads is not None and matcher.reader is not None
    assert (re.fullmatch(reads, value, re.DOTALL) is not None) == matcher.accepts(Word(value, value)), value


PATHS = ["/var/log/*", "/var/log/**", "/**", "/", "/var/**/x.log", "/a/**/b/*", "/var/.*/x", "/x/[!.]*",
         "/var/log/app1/*.log", "a/*", "a/**", "a/.*", ".*", "*", ".", "?", "[ab]*", "./a", "a/b"]
path_words = st.one_of(
    words,
    st.lists(st.sampled_from(["/", "/", ".", "..", "a", "x.log", "var", "log", "-", "\n", WILD_STAR]),
             max_size=9).map("".join),
    st.sampled_from(["", ".", "./", "./.", "/.", "/./", "//", "/..", "a/..", "/var//log/./a/", "/var/log/./",
                     "./a/", "a/.", "/var/log/x.log/.", "/var/log/.x", "/var/./log/..", "-/var/log/a"]),
)


@MANY
@given(st.sampled_from(PATHS), path_words)
# A pattern segment written with a leading `.` matches `..` as a name: only the `..` rule refuses these.
@example(".*", "..")
@example("a/.*", "a/..")
@example("/var/.*/x", "/var/../x")
@example("a/.*", "a/.../")
@example("a/.*", "a/.")  # a `.` segment is dropped, never a name
@example("/var/.*/x", "/var/./x")
def test_a_paths_regex_reads_the_word_as_typed_exactly_as_normalise_then_match(pattern: str, value: str) -> None:
    matcher = PathMatcher.parse(pattern)
    assert matcher.reader is not None
    assert (matcher.reader.fullmatch(value) is not None) == matcher.accepts(Word(value, value)), (pattern, value)


@MANY
@given(st.sampled_from(GLOBS), words)
def test_a_plain_glob_words_regex_reads_exactly_what_it_matches(glob: str, value: str) -> None:
    unit = ArgvPattern(["x", glob]).words[1]
    assert (unit.reader.fullmatch(value) is not None) == unit.matches(value), (glob, value)
    assert re.fullmatch(unit.reads(), value, re.DOTALL) is not None or not unit.matches(value)


def test_integers_and_paths_with_two_globstars_have_no_regex_so_accepts_decides() -> None:
    assert IntMatcher(1, 10).reads() is None and IntMatcher(1, 10).reader is None
    assert PathMatcher.parse("/a/**/b/**").reader is None and PathMatcher.parse("/a/**/b/*").reader is not None


def test_the_option_rule_is_in_the_regex() -> None:
    star = TypedPattern(["grep", "*", {"int": {"max": 1}}]).readers(1)[0]
    assert not star.accepts(Word("-r", "-r")) and star.accepts(Word("error", "error"))
    assert FlagMatcher.parse("-cinv").reader is not None and not FlagMatcher.parse("-cinv").accepts(Word("-r", "-r"))
