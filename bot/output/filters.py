"""Follow-up filters on a run's kept output: ``grep``-like, pure, linear time, bounded memory.

The kept output is already cleaned and redacted (`bot.output.views.full_output_text`), so a filter can
only ever show what the run's file already showed; it never touches the task.

Patterns are RE2 regular expressions (``google-re2``): matching time is linear in the line's length
whatever the pattern, so a hostile or careless pattern (``(a+)+$``, ``.*.*.*x``) cannot stall the bot.
RE2 has no back-references or look-arounds; such a pattern is refused with a sentence saying so.
A fixed string (``-F``) is matched as written. What a filter shows is bounded: ``--head``/``--tail``
lines (at most `MAX_LINES`), and never more than `MAX_SHOWN_BYTES` of matching lines, whatever the size
of the output; the count always covers every line.

The thread reply form (``@ecs-exec filter [-F] [-i] [-v] [-c] [--head N | --tail N] PATTERN``) is
parsed here too, so the button's form and the reply share one set of rules.
"""

from __future__ import annotations

import shlex
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from bot.errors import UsageError

MAX_PATTERN_CHARS = 500
MAX_LINES = 10_000
DEFAULT_LINES = 500  # matching lines kept when neither --head nor --tail is given
MAX_SHOWN_BYTES = 1024 * 1024
# RE2's compiled-program budget: a pattern needing more (huge counted repeats) is refused, not run.
_RE2_MAX_MEM = 8 * 1024 * 1024

FILTER_USAGE = (
    "Usage: `@ecs-exec filter [-F] [-i] [-v] [-c] [--head N | --tail N] PATTERN` in the thread of a run "
    "(-F fixed string, -i ignore case, -v lines that do not match, -c count only)."
)


@dataclass(frozen=True)
class OutputFilter:
    """One follow-up filter. ``head``/``tail``: the first/last N matching lines (default: the first
    `DEFAULT_LINES`); ``count_only``: just the number of matching lines."""

    pattern: str
    fixed: bool = False
    ignore_case: bool = False
    invert: bool = False
    count_only: bool = False
    head: int | None = None
    tail: int | None = None

    def __post_init__(self) -> None:
        check_filter(self)

    def describe(self) -> str:
        """As the reply form would write it, e.g. ``-i --tail 20 ' 502 '``."""
        flags = [f for f, on in (("-F", self.fixed), ("-i", self.ignore_case), ("-v", self.invert),
                                 ("-c", self.count_only)) if on]
        if self.head is not None:
            flags.append(f"--head {self.head}")
        if self.tail is not None:
            flags.append(f"--tail {self.tail}")
        end = ["--"] if self.pattern.startswith("-") else []
        return " ".join([*flags, *end, shlex.quote(self.pattern)])


def _usage(message: str) -> UsageError:
    return UsageError(message, fix=FILTER_USAGE)


def check_filter(spec: OutputFilter) -> None:
    """Refuse what cannot be run, with the sentence the user sees (`UsageError`)."""
    if not spec.pattern:
        raise _usage("A filter needs a pattern.")
    if len(spec.pattern) > MAX_PATTERN_CHARS:
        raise _usage(f"The pattern is {len(spec.pattern):,} characters long; the limit is {MAX_PATTERN_CHARS}.")
    if spec.head is not None and spec.tail is not None:
        raise _usage("Give --head or --tail, not both.")
    for name, value in (("--head", spec.head), ("--tail", spec.tail)):
        if value is not None and not 1 <= value <= MAX_LINES:
            raise _usage(f"{name} must be between 1 and {MAX_LINES:,}.")
    compile_matcher(spec)


def _options(spec: OutputFilter) -> Any:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.case_sensitive = not spec.ignore_case
    options.encoding = re2.Options.Encoding.UTF8
    options.never_nl = True  # a match never spans lines: the filter is line by line, like grep
    options.log_errors = False  # RE2 would print to stderr; the user gets the sentence below
    return options


def compile_matcher(spec: OutputFilter) -> Any:
    """``spec`` as one RE2 program that matches whole matching lines of a text (``(?m)^.*(?:P).*$``),
    so a chunk of many lines is searched in one call rather than a call per line (the binding costs
    ~10 µs a call). The pattern is compiled alone first: a pattern that compiles alone has balanced
    groups, so the wrapper cannot change its meaning. Raises `UsageError` for a pattern RE2 refuses."""
    options = _options(spec)
    core = re2.escape(spec.pattern) if spec.fixed else spec.pattern
    try:
        re2.compile(core, options)
        return re2.compile(f"(?m)^.*(?:{core}).*$", options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else b""
        detail = (reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)) or "invalid"
        raise UsageError(
            f"The pattern `{spec.pattern[:80]}` is not one the filter can run ({detail}).",
            fix="Patterns are RE2 regular expressions: no back-references or look-arounds; use -F for a fixed "
            "string.",
        ) from None


@dataclass(frozen=True)
class FilterResult:
    """What a filter found: every line counted, some shown. ``shown`` ends with a newline unless empty."""

    total_lines: int
    matched: int
    shown: str
    shown_lines: int
    # Matching lines not in ``shown``: beyond --head/--tail, or past the byte bound.
    not_shown: int
    # True when lines were left out only because of the byte bound (the user asked for more).
    byte_bound: bool = False


class _Keeper:
    """The matching lines a filter shows: the first or last ``limit``, within `MAX_SHOWN_BYTES`."""

    def __init__(self, limit: int, *, last: bool) -> None:
        self.limit = limit
        self.last = last
        self.lines: deque[str] = deque()
        self.size = 0
        self.byte_bound = False

    def add(self, line: str) -> None:
        size = len(line.encode()) + 1
        if self.last:
            self.lines.append(line)
            self.size += size
            while len(self.lines) > self.limit or (self.size > MAX_SHOWN_BYTES and len(self.lines) > 1):
                if len(self.lines) <= self.limit:
                    self.byte_bound = True
                self.size -= len(self.lines.popleft().encode()) + 1
        elif len(self.lines) < self.limit:
            if self.size + size > MAX_SHOWN_BYTES:
                self.byte_bound = True
                self.limit = len(self.lines)  # the head ends here
                return
            self.lines.append(line)
            self.size += size


def apply_filter(chunks: Iterable[str], spec: OutputFilter) -> FilterResult:
    """Run ``spec`` over a text given in chunks of whole lines (``"a\nb"``: two lines; a list of lines
    is such a sequence too), keeping at most `MAX_SHOWN_BYTES` of matching lines."""
    program = compile_matcher(spec)
    limit = 0 if spec.count_only else (spec.tail or spec.head or DEFAULT_LINES)
    keeper = _Keeper(limit, last=spec.tail is not None)
    total = matched = 0
    for chunk in chunks:
        total += chunk.count("\n") + 1
        starts: list[int] = []
        for m in program.finditer(chunk):
            start = m.start()
            if starts and starts[-1] == start:
                continue  # the binding reports an empty line's empty match twice
            starts.append(start)
            if not spec.invert and keeper.limit:
                keeper.add(m.group())
        if not spec.invert:
            matched += len(starts)
            continue
        if not keeper.limit:
            matched += chunk.count("\n") + 1 - len(starts)
            continue
        hit = set(starts)
        offset = 0
        for line in chunk.split("\n"):
            if offset not in hit:
                matched += 1
                keeper.add(line)
            offset += len(line) + 1
    shown = "".join(f"{line}\n" for line in keeper.lines)
    return FilterResult(total_lines=total, matched=matched, shown=shown, shown_lines=len(keeper.lines),
                        not_shown=matched - len(keeper.lines) if not spec.count_only else 0,
                        byte_bound=keeper.byte_bound)


# -- the thread reply form ------------------------------------------------------------------------------

_CURLY_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_FLAGS = {"-F": "fixed", "--fixed-strings": "fixed", "-i": "ignore_case", "--ignore-case": "ignore_case",
          "-v": "invert", "--invert-match": "invert", "-c": "count_only", "--count": "count_only"}


def parse_filter_words(words: Sequence[str]) -> OutputFilter:
    """``-i --tail 20 ' 502 '`` (already split shell-style) → an `OutputFilter`. ``--`` ends the options;
    flags may be combined (``-ic``)."""
    flags: dict[str, bool] = {}
    counts: dict[str, int] = {}
    pattern: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if pattern or word == "--" or not word.startswith("-") or word == "-":
            if word == "--" and not pattern:
                pattern.extend(words[i:])
                break
            pattern.append(word)
            continue
        name, eq, value = word.partition("=")
        if name in ("--head", "--tail", "-n"):
            if not eq:
                if i >= len(words):
                    raise _usage(f"{name} needs a number of lines.")
                value, i = words[i], i + 1
            if not value.isdigit():
                raise _usage(f"{name} needs a number of lines, not `{value[:20]}`.")
            counts["tail" if name == "--tail" else "head"] = int(value)
        elif word in _FLAGS:
            flags[_FLAGS[word]] = True
        elif len(word) > 2 and not word.startswith("--") and all(f"-{c}" in _FLAGS for c in word[1:]):
            flags.update({_FLAGS[f"-{c}"]: True for c in word[1:]})
        else:
            raise _usage(f"Unknown filter option `{word[:30]}`.")
    if len(pattern) > 1:
        raise _usage("Give one pattern; quote it when it has spaces, e.g. `filter \"GET /api\"`.")
    if not pattern:
        raise _usage("A filter needs a pattern.")
    return OutputFilter(
        pattern=pattern[0], fixed=flags.get("fixed", False), ignore_case=flags.get("ignore_case", False),
        invert=flags.get("invert", False), count_only=flags.get("count_only", False),
        head=counts.get("head"), tail=counts.get("tail"),
    )


def parse_filter_text(text: str) -> OutputFilter:
    """The words after ``filter`` as typed (shell-style quoting)."""
    # Phones and some desktops turn typed quotes into curly ones; they are meant as quoting here.
    text = text.translate(_CURLY_QUOTES)
    # Quotes group words as in a shell, but a backslash is literal: `filter 5\d\d` means the regex.
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split, lexer.commenters, lexer.escape = True, "", ""
    try:
        words = list(lexer)
    except ValueError as exc:
        raise _usage(f"The filter could not be read ({exc}).") from None
    return parse_filter_words(words)
