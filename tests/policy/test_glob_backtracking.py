"""Globs match a word in linear time however many stars they have: ``glob_regex`` matches the text between
two stars where it first fits, atomically, and ``path_glob_regex`` does the same with the names between
two ``**``. A user can send a 4,000-character word; with the plain translation `*a*b*c*d*` took 0.4 s on
2,000 characters and a path pattern with three ``**`` ~0.2 s on 800 (cubic), per rule that reads it.

Held to two things: the atomic form accepts exactly what the plain form accepts (random globs and
words), and adversarial words finish (the plain form would need hours on these; the suite's timeout
turns that into a failure). Left quadratic: a ``**`` followed by a ``*`` in one word (see
``glob_regex``)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.argv_matchers import PathMatcher, glob_class, glob_regex
from bot.command_patterns import ArgvPattern
from bot.shell_syntax import SimpleCommand, Word
from tests.policy.test_typed_matchers_properties import shell_path_match

MANY = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STAR, QMARK, DOUBLE_STAR = "[^/]*", "[^/]", ".*"


def plain_translation(glob: str, double_star: str | None) -> str:
    """Every token in place, stars as plain quantifiers: the meaning, with the backtracking."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        elif ch == "*" and double_star is not None and glob.startswith("**", i):
            out.append(double_star)
            i += 2
        elif ch == "*":
            out.append(STAR)
            i += 1
        elif ch == "?":
            out.append(QMARK)
            i += 1
        elif ch == "[" and (cls := glob_class(glob, i)) is not None:
            out.append(cls[0])
            i = cls[1]
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


globs = st.lists(st.sampled_from(["*", "*", "**", "a", "b", "/", "?", "[ab]", "[!a]", "\\*", "ab"]),
                 min_size=1, max_size=7).map("".join)
words = st.text(alphabet="aabbc/*", max_size=12)


@MANY
@given(globs, words, st.sampled_from([None, DOUBLE_STAR]))
def test_the_atomic_form_accepts_exactly_what_the_plain_form_accepts(glob: str, word: str,
                                                                     double_star: str | None) -> None:
    atomic = re.compile(glob_regex(glob, star=STAR, qmark=QMARK, double_star=double_star), re.DOTALL)
    plain = re.compile(plain_translation(glob, double_star), re.DOTALL)
    assert (atomic.fullmatch(word) is None) == (plain.fullmatch(word) is None), (glob, word, atomic.pattern)


globstar_patterns = st.lists(st.sampled_from(["**", "**", "a", "ab", "a*", "*b", "?"]), min_size=2, max_size=6).map(
    lambda names: "/" + "/".join(names))
globstar_words = st.lists(st.sampled_from(["a", "ab", "b", "ba", "abb", ".a", "x"]), max_size=7).map(
    lambda names: "/" + "/".join(names))


@MANY
@given(globstar_patterns, globstar_words)
# A name the pattern wants can begin a longer name first: only whole names may be taken.
@example("/**/a/**/b", "/ab/a/b")
@example("/**/a*/**/b", "/ba/ab/b")
@example("/**/a/**/a/**", "/a/ab/a")
def test_names_between_globstars_match_as_the_shell_rules_say(pattern: str, path: str) -> None:
    assert PathMatcher.parse(pattern).accepts(Word(path, path)) == shell_path_match(pattern, path), (pattern, path)


def test_many_stars_read_a_long_word_at_once() -> None:
    for glob in ("*a*b*c*d*e*", "*a*b*c**d**e"):
        pattern = ArgvPattern(["grep", glob])
        for value, matched in (("ab" * 10_000, False), ("abcd" * 5_000 + "x", False),
                               ("e" + "a" * 20_000, False), ("abcd" * 5_000 + "e", True), ("xaybzcwdve", True)):
            command = SimpleCommand((Word("grep", "grep"), Word(value, value)), "grep …")
            assert pattern.match(command).matched is matched, (glob, value[:20])


def test_many_globstars_read_a_long_path_at_once() -> None:
    for glob in ("/**/a/**/b/**/c/**/d", "/**/a/**/b/*", "/var/**/x/**/y/**"):
        matcher = PathMatcher.parse(glob)
        for value in ("/" + "a/b/c/" * 3_000 + "x", "/var/" + "x/" * 6_000 + "z", "/" + "a//b/./" * 2_000):
            assert not matcher.accepts(Word(value, value)), (glob, value[:20])
    assert PathMatcher.parse("/**/a/**/b/**/c/**/d").accepts(Word("/a/x/b/c/y/z/d", "/a/x/b/c/y/z/d"))
