"""What a cut shows: whole lines, or the start of a line longer than everything; never a line's end alone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.output.cut import ELLIPSIS, Cut, close_line_start, fit_prefix, keep_head, keep_tail


def test_a_partial_last_line_is_hidden_whole() -> None:
    cut = keep_head("one\ntwo\nthr", end_cut=True)
    assert cut == Cut("one\ntwo\n", "thr")
    assert keep_head("one\ntwo\nthree", end_cut=False).shown == "one\ntwo\nthree"  # not cut: a whole line


def test_a_partial_first_line_is_hidden_whole() -> None:
    cut = keep_tail("= hunter2\nnext\nlast\n", start_cut=True)
    assert cut.shown == "next\nlast\n" and cut.hidden == "= hunter2\n" and cut.hidden_lines == 1
    assert keep_tail("no newline at all", start_cut=True) == Cut("", "no newline at all")


def test_a_head_without_one_whole_line_shows_the_start_of_its_line() -> None:
    cut = keep_head("password = hunter2 and more", end_cut=True)
    assert cut.line_start and cut.shown == "password = hunter2 and more" and cut.hidden == ""
    cut = keep_head("x" * 50 + "\nnext\n", budget=20)
    assert cut.line_start and cut.shown == "x" * 19 and cut.hidden.startswith("x" * 31 + "\n")


def test_budgets_take_whole_lines_only() -> None:
    text = "aaaa\nbbbb\ncccc\n"
    assert keep_head(text, budget=12) == Cut("aaaa\nbbbb\n", "cccc\n")
    assert keep_tail(text, budget=12) == Cut("bbbb\ncccc\n", "aaaa\n")
    # The end of a line longer than the budget is never shown on its own.
    assert keep_tail("short\n" + "y" * 100, budget=50) == Cut("", "short\n" + "y" * 100)


def test_the_measure_is_the_caller_s() -> None:
    def doubled(s: str) -> int:
        return 2 * len(s)

    assert keep_head("ab\ncd\n", budget=6, measure=doubled).shown == "ab\n"
    assert fit_prefix("abcdef", 7, doubled) == 3


def test_closing_a_line_start_drops_the_token_the_cut_fell_into() -> None:
    assert close_line_start("GET /x token ghp_A1b2") == ("GET /x token " + ELLIPSIS, "ghp_A1b2")
    assert close_line_start("key: [redacted:token]") == ("key: [redacted:token]" + ELLIPSIS, "")
    assert close_line_start("abcdef") == (ELLIPSIS, "abcdef")


def test_hidden_lines_count_an_unterminated_piece() -> None:
    assert Cut("", "a\nb").hidden_lines == 2 and Cut("", "a\n").hidden_lines == 1 and Cut("").hidden_lines == 0


_TEXT = st.text(alphabet="ab \n=", max_size=200)


@settings(max_examples=300, deadline=None)
@given(text=_TEXT, budget=st.one_of(st.none(), st.integers(min_value=0, max_value=80)), cut_edge=st.booleans())
def test_shown_and_hidden_are_the_text_and_shown_is_whole_lines(text: str, budget: int | None,
                                                                  cut_edge: bool) -> None:
    head = keep_head(text, end_cut=cut_edge, budget=budget)
    assert head.shown + head.hidden == text
    if budget is not None:
        assert len(head.shown) + (len(ELLIPSIS) if head.line_start else 0) <= max(budget, 0) or not head.shown
    if not head.line_start and head.hidden and head.shown:
        assert head.shown.endswith("\n")
    if head.line_start:
        assert "\n" not in head.shown
    tail = keep_tail(text, start_cut=cut_edge, budget=budget)
    assert tail.hidden + tail.shown == text
    if budget is not None:
        assert len(tail.shown) <= budget
    if tail.hidden and tail.shown:
        assert tail.hidden.endswith("\n")  # the tail starts a line
