"""What is shown where output is cut: the one owner of that rule. Pure, linear time.

Output is cut in two places: the capture keeps a bounded head and tail of the bytes (``capture``), and
``render`` fits what was kept into Slack's 3,000-character sections. Both cuts go through here, with
one rule: **a line is shown whole or not at all**. A secret is recognised by its key (``password = v``,
``"token": "v"``, ``Authorization: Bearer v``); the remainder of a line whose beginning was cut away can
be a value without its key, and the beginning of a line whose end was cut away can be the first half of
a token too short to recognise. So a partial line is hidden, and counted as hidden.

One exception keeps a line longer than every budget from showing nothing: when not even the first line
is whole, its *start* is shown (``Cut.line_start``). The start of a line has its key. At the capture's
cut the line was not redacted yet: ``bot.output.views`` redacts that start as a whole line, then
``close_line_start`` drops the token the cut fell into. Render cuts lines that were redacted whole, so
it only marks the cut. The end of such a line is never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ELLIPSIS = "…"

Measure = Callable[[str], int]

# Characters a secret value can be made of: a run of them at a cut may be part of a token.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-.%:@~")


@dataclass(frozen=True)
class Cut:
    """One side of a cut: ``shown`` is whole lines (or, if ``line_start``, the start of one line);
    ``hidden`` is everything else of the text, for the "N lines (X KB) not shown" count."""

    shown: str
    hidden: str = ""
    line_start: bool = False  # ``shown`` ends inside a line (its rest is in ``hidden``)

    @property
    def hidden_bytes(self) -> int:
        return len(self.hidden.encode())

    @property
    def hidden_lines(self) -> int:
        """Lines with some part hidden: the newlines in ``hidden``, plus an unterminated last piece."""
        if not self.hidden:
            return 0
        return self.hidden.count("\n") + (0 if self.hidden.endswith("\n") else 1)


def fit_prefix(text: str, budget: int, measure: Measure = len) -> int:
    """Length of the longest prefix of ``text`` that measures at most ``budget``. ``measure`` must be
    additive and never shorter than ``len`` (Slack's escaped length is), which bounds the search."""
    if measure(text) <= budget:
        return len(text)
    lo, hi = 0, min(len(text), max(budget, 0))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def keep_head(text: str, *, end_cut: bool = False, budget: int | None = None, measure: Measure = len) -> Cut:
    """The whole lines at the start of ``text`` that fit ``budget`` (all of them when ``None``).

    ``end_cut``: ``text`` ends inside a line (the capture cut there), so its last line is partial and
    hidden. If no whole line fits, the start of the first line is shown (``line_start``), leaving room
    for ``ELLIPSIS`` within ``budget``.
    """
    whole_end = text.rfind("\n") + 1 if end_cut else len(text)
    if budget is None:
        end = whole_end
    elif measure(text[:whole_end]) <= budget:
        end = whole_end
    else:
        end, used = 0, 0
        while end < whole_end:
            nl = text.find("\n", end, whole_end)
            stop = whole_end if nl < 0 else nl + 1
            cost = measure(text[end:stop])
            if used + cost > budget:
                break
            used += cost
            end = stop
    if end > 0 or not text:
        return Cut(text[:end], text[end:])
    # Not even the first line is whole within the budget: show its start.
    first_end = text.find("\n")
    first = text if first_end < 0 else text[:first_end]
    if budget is not None:
        first = first[: fit_prefix(first, budget - measure(ELLIPSIS), measure)]
    if not first:
        return Cut("", text)
    return Cut(first, text[len(first):], line_start=True)


def keep_tail(text: str, *, start_cut: bool = False, budget: int | None = None, measure: Measure = len) -> Cut:
    """The whole lines at the end of ``text`` that fit ``budget`` (all of them when ``None``).

    ``start_cut``: ``text`` starts inside a line (its beginning was cut away), so its first line is
    hidden. A last line longer than the budget is hidden whole: the end of a line is never shown alone.
    """
    start = 0
    if start_cut:
        nl = text.find("\n")
        start = len(text) if nl < 0 else nl + 1
    if budget is None or measure(text[start:]) <= budget:
        return Cut(text[start:], text[:start])
    # Walk back line by line; a line's cost includes its newline (lines are additive at newlines).
    used, begin = 0, len(text)
    while begin > start:
        nl = text.rfind("\n", start, begin - 1) if begin - 1 > start else -1
        line_start = max(nl + 1, start)
        cost = measure(text[line_start:begin])
        if used + cost > budget:
            break
        used += cost
        begin = line_start
    return Cut(text[begin:], text[:begin])


def close_line_start(redacted: str) -> tuple[str, str]:
    """``(shown, dropped)`` for the start of a line cut at its end, already redacted as a whole line:
    the run of token characters the cut fell into is dropped (``ghp_A1b2`` is too short to be
    recognised, yet is half a token) and ``ELLIPSIS`` marks the cut."""
    end = len(redacted)
    while end > 0 and redacted[end - 1] in _TOKEN_CHARS:
        end -= 1
    return redacted[:end] + ELLIPSIS, redacted[end:]
