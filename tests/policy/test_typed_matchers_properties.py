"""Properties of the typed argv matchers: each accepts exactly what its documented meaning accepts,
checked against references written from that meaning (and, for paths, from the shell's glob rules via
``fnmatch`` per path segment), on random words."""

from __future__ import annotations

import fnmatch
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.argv_matchers import FlagMatcher, IntMatcher, PathMatcher
from bot.command_patterns import TypedPattern
from bot.shell_syntax import WILD_QMARK, WILD_STAR, SimpleCommand, Word, parse_pipeline

MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def word(value: str) -> Word:
    return Word(value, value)


# -- integers --------------------------------------------------------------------------------------------

int_words = st.one_of(
    st.integers(min_value=-10**21, max_value=10**21).map(str),
    st.text(alphabet="0123456789-+ex. ", min_size=1, max_size=8),
    st.from_regex(r"0{0,25}[0-9]{1,3}", fullmatch=True),
    st.sampled_from(["-0", "+5", "1e9", "10f", "0x10", "٣", "１", "", "-", "--1"]),
)
bounds = st.tuples(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6)).map(sorted)


def int_reference(value: str, low: int, high: int) -> bool:
    """Documented: ASCII digits, a leading `-` only when negatives are allowed, within [low, high]."""
    if not re.fullmatch(r"-?[0-9]+", value, re.ASCII):
        return False
    if value.startswith("-") and low >= 0:
        return False
    return low <= int(value) <= high


@MANY
@given(int_words, bounds)
def test_int_accepts_exactly_the_integers_in_range(value: str, pair: list[int]) -> None:
    low, high = pair
    assert IntMatcher(low, high).accepts(word(value)) == int_reference(value, low, high)


# -- flag sets ---------------------------------------------------------------------------------------------

short_sets = st.sets(st.sampled_from("acinvlz"), min_size=1, max_size=5).map("".join)
long_sets = st.lists(st.sampled_from(["--count", "--color", "--help"]), max_size=2, unique=True)
flag_words = st.one_of(
    st.text(alphabet="-acinvlzx", min_size=1, max_size=5),
    st.sampled_from(["--count", "--color", "--colour", "--help", "-", "--", "-c=1", "c", "--c"]),
)


def flags_reference(value: str, short: str, long: list[str]) -> bool:
    """Documented: a long flag of the set, or `-` then one or more letters of the short set."""
    if value in long:
        return True
    return bool(re.fullmatch(r"-[^-].*|-.", value)) and len(value) > 1 and value[1] != "-" and set(
        value[1:]) <= set(short)


@MANY
@given(flag_words, short_sets, long_sets)
def test_flags_accept_exactly_words_made_of_the_set(value: str, short: str, long: list[str]) -> None:
    matcher = FlagMatcher.parse([f"-{short}", *long])
    assert matcher.accepts(word(value)) == flags_reference(value, short, long)


@MANY
@given(st.lists(flag_words, max_size=4), short_sets)
def test_a_flag_set_is_any_combination_in_any_number_of_words(values: list[str], short: str) -> None:
    pattern = TypedPattern(["grep", {"flags": f"-{short}"}, "needle", "/var/log/x"])
    words = tuple(word(w) for w in ["grep", *values, "needle", "/var/log/x"])
    expected = all(flags_reference(v, short, []) for v in values)
    assert pattern.match(SimpleCommand(words, "")).matched == expected


# -- paths: the shell's glob rules, per segment ---------------------------------------------------------------

SEGMENT_PATTERNS = ["a", "b", "ab", ".a", "*", "a*", "*a", "*.a", ".*", "?", "a?", "[ab]", "[!a]*", "**"]
SEGMENT_WORDS = ["a", "b", "ab", "ba", ".a", ".b", "a.a", "b.a", ".", "..", "", "aa", "abc"]


@st.composite
def path_patterns(draw: st.DrawFn) -> str:
    segments = draw(st.lists(st.sampled_from(SEGMENT_PATTERNS), min_size=1, max_size=4))
    return "/" + "/".join(segments)


@st.composite
def path_words(draw: st.DrawFn) -> str:
    segments = draw(st.lists(st.sampled_from(SEGMENT_WORDS), min_size=0, max_size=5))
    return draw(st.sampled_from(["/", "//", "./"])) + "/".join(segments) + draw(st.sampled_from(["", "/", "/."]))


def shell_segment_match(name: str, pattern: str) -> bool:
    """POSIX pathname expansion for one segment: fnmatch, but a leading `.` only by a literal `.`."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def shell_path_match(pattern: str, path: str) -> bool:
    """Reference: normalise as a file system reads the path (`//`, `.` segments and a trailing `/` are
    nothing; `..` is refused outright), then match segment by segment; `**` is any number of segments,
    none of them a dotfile (bash globstar without dotglob)."""
    if not path.startswith("/"):
        return False
    names = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in names:
        return False
    parts = [s for s in pattern.split("/") if s]

    def walk(p: int, n: int) -> bool:
        if p == len(parts):
            return n == len(names)
        if parts[p] == "**":
            return walk(p + 1, n) or (n < len(names) and not names[n].startswith(".") and walk(p, n + 1))
        return n < len(names) and shell_segment_match(names[n], parts[p]) and walk(p + 1, n + 1)

    return walk(0, 0)


@MANY
@given(path_patterns(), path_words())
def test_path_glob_accepts_what_the_shell_rules_accept(pattern: str, path: str) -> None:
    assert PathMatcher.parse(pattern).accepts(word(path)) == shell_path_match(pattern, path), (pattern, path)


@MANY
@given(path_patterns(), st.lists(st.sampled_from(["a", "b", "*", "?", "a*", "*b", ".a"]), min_size=1, max_size=4),
       st.data())
def test_a_user_glob_is_accepted_only_if_every_expansion_is(pattern: str, segments: list[str],
                                                            data: st.DataObject) -> None:
    try:
        (command,) = parse_pipeline("cat /" + "/".join(segments))
    except Exception:  # noqa: BLE001 - the tokenizer refuses some globs (after a `.`): nothing to check
        return
    typed = command.words[1]
    matcher = PathMatcher.parse(pattern)
    if not matcher.accepts(typed):
        return
    expanded = []
    for ch in typed.value:
        if ch == WILD_STAR:
            expanded.append(data.draw(st.text(alphabet="ab.", max_size=3)))
        elif ch == WILD_QMARK:
            expanded.append(data.draw(st.sampled_from("ab.")))
        else:
            expanded.append(ch)
    name = "".join(expanded)
    # What the shell can substitute: names whose segments the user's glob matches, by the same rules.
    if not shell_path_match("/".join(s if s else "" for s in typed.display.split("/")), name):
        return
    assert matcher.accepts(word(name)), (pattern, typed.display, name)
