"""Follow-up filters: the reply form's grammar, grep-like results, bounds, and hostile patterns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import UsageError
from bot.output.filters import (
    DEFAULT_LINES,
    MAX_SHOWN_BYTES,
    OutputFilter,
    apply_filter,
    parse_filter_text,
)

ACCESS_LOG = [
    '10.0.0.1 - - "GET / HTTP/1.1" 200 612',
    '10.0.0.2 - - "GET /api HTTP/1.1" 502 157',
    '10.0.0.3 - - "POST /api HTTP/1.1" 502 157',
    '10.0.0.4 - - "get /health HTTP/1.1" 200 2',
    "",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("502", OutputFilter("502")),
        ("-c ' 502 '", OutputFilter(" 502 ", count_only=True)),
        ("-i -v GET", OutputFilter("GET", ignore_case=True, invert=True)),
        ("-ivF a.b", OutputFilter("a.b", ignore_case=True, invert=True, fixed=True)),
        ("--tail 20 error", OutputFilter("error", tail=20)),
        ("--head=5 error", OutputFilter("error", head=5)),
        ("-n 5 error", OutputFilter("error", head=5)),
        ("-- -v", OutputFilter("-v")),
        ("5\\d\\d$", OutputFilter("5\\d\\d$")),  # a backslash is the regex's, not the shell's
        ('-F "a b\\"', OutputFilter("a b\\", fixed=True)),
        ("\u201cGET /api\u201d", OutputFilter("GET /api")),  # a phone's curly quotes
    ],
)
def test_the_reply_form(text: str, expected: OutputFilter) -> None:
    assert parse_filter_text(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "needs a pattern"),
        ("-c", "needs a pattern"),
        ("GET /api", "one pattern"),
        ("--head 5 --tail 5 x", "not both"),
        ("--head 0 x", "between 1 and"),
        ("--tail lots x", "number of lines"),
        ("--tail", "needs a number"),
        ("-x pattern", "Unknown filter option"),
        ("'unclosed", "could not be read"),
        ("(a)\\1", "back-references"),
        ("(?=lookahead)", "back-references or look-arounds"),
        ("x" * 501, "limit is 500"),
    ],
)
def test_what_cannot_run_is_one_sentence_with_the_usage(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_filter_text(text)
    assert says in caught.value.user_text()


def test_the_describe_form_parses_back_to_the_same_filter() -> None:
    for spec in (OutputFilter(" 502 ", count_only=True), OutputFilter("-x", invert=True, tail=3),
                 OutputFilter("it's", fixed=True, ignore_case=True, head=9)):
        assert parse_filter_text(spec.describe()) == spec


def test_matching_lines_count_and_options() -> None:
    result = apply_filter(ACCESS_LOG, OutputFilter(" 502 "))
    assert (result.total_lines, result.matched, result.shown_lines, result.not_shown) == (5, 2, 2, 0)
    assert result.shown == f"{ACCESS_LOG[1]}\n{ACCESS_LOG[2]}\n"
    assert apply_filter(ACCESS_LOG, OutputFilter("get /", ignore_case=True)).matched == 3
    assert apply_filter(ACCESS_LOG, OutputFilter("get /")).matched == 1
    assert apply_filter(ACCESS_LOG, OutputFilter(" 502 ", invert=True)).matched == 3  # the empty line too
    assert apply_filter(ACCESS_LOG, OutputFilter("1.1", fixed=True)).matched == 4
    assert apply_filter(["1x1"], OutputFilter("1.1", fixed=True)).matched == 0
    assert apply_filter(["1x1"], OutputFilter("1.1")).matched == 1
    counted = apply_filter(ACCESS_LOG, OutputFilter("502", count_only=True))
    assert (counted.matched, counted.shown, counted.not_shown) == (2, "", 0)


def test_head_and_tail_keep_the_first_and_last_matches() -> None:
    lines = [str(n) for n in range(1, 1001)]
    head = apply_filter(lines, OutputFilter("7", head=3))
    assert head.shown == "7\n17\n27\n" and head.matched == 271 and head.not_shown == 268
    tail = apply_filter(lines, OutputFilter("7", tail=2))
    assert tail.shown == "987\n997\n" and tail.matched == 271
    default = apply_filter(lines, OutputFilter("."))
    assert default.shown_lines == DEFAULT_LINES and default.not_shown == 1000 - DEFAULT_LINES


def test_what_is_kept_stays_within_the_byte_bound_however_large_the_output() -> None:
    line = "x" * 999
    many = (line for _ in range(5000))  # 5 MB, streamed
    head = apply_filter(many, OutputFilter("x", head=10_000))
    assert head.matched == 5000 and len(head.shown.encode()) <= MAX_SHOWN_BYTES and head.byte_bound
    assert head.shown_lines + head.not_shown == 5000
    tail = apply_filter((line for _ in range(5000)), OutputFilter("x", tail=10_000))
    assert len(tail.shown.encode()) <= MAX_SHOWN_BYTES and tail.byte_bound
    assert tail.shown_lines + tail.not_shown == 5000


def test_patterns_that_stall_backtracking_engines_finish() -> None:
    # RE2 is linear: these take seconds to hours in `re` on such lines, and a moment here.
    long_line = "a" * 200_000
    for pattern in ("(a+)+$", "(a|a)*b", ".*.*.*x", "(x+x+)+y"):
        assert apply_filter([long_line, long_line], OutputFilter(pattern)).matched in (0, 2)


@given(st.text(max_size=80))
def test_any_reply_text_parses_or_is_a_usage_error(text: str) -> None:
    try:
        spec = parse_filter_text(text)
    except UsageError:
        return
    assert spec.pattern


_LINE = st.text(alphabet="ab5 0x\u00e9", max_size=12)


@given(st.lists(_LINE, max_size=30), st.integers(min_value=1, max_value=5),
       st.sampled_from(["a", "5.?0", "^b", "x$", "^$", "a*", "[^a]"]), st.booleans(), st.booleans())
def test_chunks_of_lines_match_like_grep_line_by_line(
    lines: list[str], per_chunk: int, pattern: str, invert: bool, ignore_case: bool
) -> None:
    """One RE2 call per chunk gives what a per-line `re.search` (an independent oracle) gives."""
    import re

    oracle = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    expected = [line for line in lines if (oracle.search(line) is not None) != invert]
    chunks = ["\n".join(lines[i : i + per_chunk]) for i in range(0, len(lines), per_chunk)]
    result = apply_filter(chunks, OutputFilter(pattern, invert=invert, ignore_case=ignore_case, head=100))
    assert result.total_lines == len(lines)
    assert result.matched == len(expected)
    assert result.shown == "".join(f"{line}\n" for line in expected)
