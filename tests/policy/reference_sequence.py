"""The typed pattern engine as it was first written: a set-of-positions simulation, one element at a
time. Slow (a set per element, a call per unit) but plain to read, so the automaton in
``bot.argv_matchers`` is checked against it on random patterns and commands."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.argv_matchers import Element, Progress, WordMatcher
from bot.shell_syntax import Word


def reference_matches(elements: Sequence[Element], words: Sequence[Word], *, relax: bool = False) -> bool:
    return len(words) in _ends(elements, words, None, relax)


def reference_progress(elements: Sequence[Element], words: Sequence[Word]) -> Progress:
    progress = _Tracker()
    ends = _ends(elements, words, progress, False)
    if ends:
        progress.reached(max(ends))
    return Progress(progress.furthest, progress.failures, progress.end_ok_at)


class _Tracker:
    def __init__(self) -> None:
        self.furthest = -1
        self.failures: list[tuple[WordMatcher, Word | None, bool]] = []
        self.end_ok_at = -1

    def failed(self, position: int, unit: WordMatcher, word: Word | None, misplaced_glob: bool = False) -> None:
        if position > self.furthest:
            self.furthest, self.failures = position, []
        if position == self.furthest:
            self.failures.append((unit, word, misplaced_glob))

    def reached(self, position: int) -> None:
        if position > self.furthest:
            self.furthest, self.failures = position, []
        if position == self.furthest:
            self.end_ok_at = position


def _ends(elements: Sequence[Element], words: Sequence[Word], progress: _Tracker | None, relax: bool) -> set[int]:
    positions = {0}
    for element in elements:
        positions = _element_ends(element, words, positions, progress, relax)
        if not positions:
            break
    return positions


def _glob_may_expand_here(word: Word, position: int, count: int, repeated: bool) -> bool:
    return not word.has_glob or repeated or position == count - 1


def _unit_ends(element: Element, words: Sequence[Word], starts: Iterable[int],
               progress: _Tracker | None, relax: bool) -> set[int]:
    unit = element.unit
    if isinstance(unit, tuple):
        positions = set(starts)
        for inner in unit:
            positions = _element_ends(inner, words, positions, progress, relax)
            if not positions:
                break
        return positions
    ends: set[int] = set()
    count = len(words)
    for i in starts:
        if i >= count:
            if progress is not None:
                progress.failed(i, unit, None)
            continue
        word = words[i]
        ok = unit.accepts(word)
        if ok and word.has_glob:
            ok = unit.covers_globs
            if ok and not relax and not _glob_may_expand_here(word, i, count, element.repeat):
                ok = False
                if progress is not None:
                    progress.failed(i, unit, word, misplaced_glob=True)
                    continue
        if ok:
            ends.add(i + 1)
        elif progress is not None:
            progress.failed(i, unit, word)
    return ends


def _element_ends(element: Element, words: Sequence[Word], starts: set[int],
                  progress: _Tracker | None, relax: bool) -> set[int]:
    if not element.repeat:
        after = _unit_ends(element, words, starts, progress, relax)
        return after | starts if element.optional else after
    result = set(starts) if element.optional else set()
    current = starts
    seen = set(starts)
    while current:
        after = _unit_ends(element, words, current, progress, relax)
        result |= after
        current = after - seen
        seen |= after
    return result
