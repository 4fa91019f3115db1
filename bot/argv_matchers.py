"""Typed argument matchers: argv patterns that say exactly what each word may be.

A typed pattern is a sequence of *elements*; each element is one word matcher (or a ``seq`` of
elements) that must appear once, at most once (``optional``), once or more (``repeat``) or any
number of times (both). Word matchers:

* a plain string: the glob of today's ``argv:`` form (``bot.command_patterns``); the whole word
  ``**`` as the last item still means "any remaining words";
* ``int``: ASCII decimal digits (a ``-`` sign only when ``min`` is negative), within ``min``..``max``;
  ``10f``, ``1e9``, ``+5`` and ``0x10`` are not integers;
* ``flags``: a set of short flags (``-cinv``) and/or long ones (``--count``). It matches any number
  of words (none included), each one long flag of the set or ``-`` followed by one or more letters
  of the set, so ``-ic``, ``-i -c`` and ``-n`` all match ``flags: -cinv``;
* ``path``: a glob with the shell's rules, applied to the word after normalising it (``//`` and
  ``/./`` collapse, a trailing ``/`` is dropped). Per path segment: ``*`` and ``?`` stay inside the
  segment, a segment is never empty, a name starting with ``.`` is matched only by a pattern segment
  that starts with a literal ``.``, and a whole segment ``**`` stands for any number of segments
  (with the same dotfile rule). A word with a ``..`` segment never matches;
* ``one_of``: exactly one of the listed words.

Unquoted globs the *user* typed (the shell expands them) are accepted only where every expansion
would be: by a ``path`` or a string glob whose wildcards cover them, and only in the command's last
word or in a repeated element (the expansion's extra words land in the same repetition).

Matching is a set-of-positions simulation over the words (no backtracking): polynomial whatever the
pattern. Pure; no I/O.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.shell_syntax import WILD_QMARK, WILD_STAR, Word

# Bounds have at most this many digits; a longer word (leading zeros aside) is out of range anyway,
# and is refused before int() spends time on it.
_MAX_INT_DIGITS = 19
_INT_WORD = re.compile(r"-?[0-9]+")
_SHORT_FLAG = re.compile(r"[A-Za-z0-9]")
_LONG_FLAG = re.compile(r"--[A-Za-z0-9][A-Za-z0-9-]*")
_TRAVERSAL_SEGMENT = ".."


class MatcherError(ValueError):
    """A typed matcher in the policy file is invalid (one sentence, the caller adds where)."""


# -- word matchers ------------------------------------------------------------------------------------


class WordMatcher(ABC):
    """Accepts or refuses one word. ``literals``: words the operator wrote out in full (not dangerous
    to accept, since they were named); ``covers_globs``: may accept a word holding user globs."""

    literals: frozenset[str] = frozenset()
    covers_globs = False

    @abstractmethod
    def accepts(self, word: Word) -> bool: ...

    @abstractmethod
    def describe(self) -> str:
        """The matcher as shown in `policy list` (a placeholder like ``<int 1..100>``)."""

    @abstractmethod
    def expected(self) -> str:
        """What the matcher wants, as the end of "expected …"."""

    def why_not(self, word: Word) -> str | None:
        """A more precise reason than "expected X, given Y", when there is one."""
        return None


@dataclass(frozen=True)
class IntMatcher(WordMatcher):
    minimum: int
    maximum: int

    def __post_init__(self) -> None:
        if self.minimum > self.maximum:
            raise MatcherError(f"`int` has min {self.minimum} above max {self.maximum}")
        if max(abs(self.minimum), abs(self.maximum)) >= 10**_MAX_INT_DIGITS:
            raise MatcherError(f"`int` bounds must have at most {_MAX_INT_DIGITS} digits")

    def accepts(self, word: Word) -> bool:
        value = word.value
        if _INT_WORD.fullmatch(value) is None:
            return False
        if value[0] == "-" and self.minimum >= 0:
            return False  # `-0` included: a word starting with `-` is an option unless negatives are meant
        if len(value.lstrip("-").lstrip("0")) > _MAX_INT_DIGITS:
            return False
        return self.minimum <= int(value) <= self.maximum

    def describe(self) -> str:
        return f"<int {self.minimum}..{self.maximum}>"

    def expected(self) -> str:
        return f"an integer from {self.minimum} to {self.maximum}"

    def why_not(self, word: Word) -> str | None:
        if _INT_WORD.fullmatch(word.value) is not None:
            return f"{word.display} is outside {self.minimum}..{self.maximum}"
        return None


@dataclass(frozen=True)
class FlagMatcher(WordMatcher):
    """ONE flag word; the element around it repeats it (``flags`` = any number of such words)."""

    short: frozenset[str]
    long: frozenset[str]
    literals: frozenset[str] = field(default=frozenset())

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> FlagMatcher:
        items = [spec] if isinstance(spec, str) else list(spec)
        short: set[str] = set()
        long: set[str] = set()
        for item in items:
            if not isinstance(item, str):
                raise MatcherError(f"`flags` item {item!r} must be a string like -cinv or --count")
            if _LONG_FLAG.fullmatch(item):
                long.add(item)
            elif len(item) >= 2 and item[0] == "-" and all(_SHORT_FLAG.fullmatch(c) for c in item[1:]):
                short.update(item[1:])
            else:
                raise MatcherError(f"`flags` item {item!r} is neither short flags (-cinv) nor a long flag "
                                   "(--count)")
        if not short and not long:
            raise MatcherError("`flags` names no flag")
        literals = frozenset({f"-{c}" for c in short} | long)
        return cls(frozenset(short), frozenset(long), literals)

    def accepts(self, word: Word) -> bool:
        value = word.value
        if value in self.long:
            return True
        return (len(value) >= 2 and value[0] == "-" and value[1] != "-"
                and all(c in self.short for c in value[1:]))

    def _shown(self) -> str:
        parts = []
        if self.short:
            parts.append("-" + "".join(sorted(self.short)))
        parts += sorted(self.long)
        return " ".join(parts)

    def describe(self) -> str:
        return f"[flags {self._shown()}]"

    def expected(self) -> str:
        return f"flags from {self._shown()}"

    def why_not(self, word: Word) -> str | None:
        value = word.value
        if value.startswith("-") and not value.startswith("--"):
            bad = sorted({c for c in value[1:] if c not in self.short})
            if bad:
                return f"-{''.join(bad)} is not in the flag set {self._shown()}"
        return None


@dataclass(frozen=True)
class OneOfMatcher(WordMatcher):
    words: tuple[str, ...]
    literals: frozenset[str] = field(default=frozenset())

    @classmethod
    def parse(cls, words: Sequence[object]) -> OneOfMatcher:
        if not words or not all(isinstance(w, str) and w for w in words):
            raise MatcherError("`one_of` needs a list of non-empty words")
        values = tuple(str(w) for w in words)
        return cls(values, frozenset(values))

    def accepts(self, word: Word) -> bool:
        return word.value in self.literals

    def describe(self) -> str:
        return "{" + "|".join(self.words) + "}"

    def expected(self) -> str:
        return "one of " + ", ".join(f"`{w}`" for w in self.words)


def normalise_path(value: str) -> str | None:
    """The path with ``//``, ``/./`` and a trailing ``/`` removed; None when it has a ``..`` segment
    (which could leave the directory a pattern names, through any symlink on the way)."""
    if "//" not in value and "/." not in value and value[-1:] not in ("/", "") and value[:1] != ".":
        return value  # already normal: no empty, `.` or `..` segment, no trailing `/`
    absolute = value.startswith("/")
    segments = []
    for segment in value.split("/"):
        if segment == _TRAVERSAL_SEGMENT:
            return None
        if segment and segment != ".":
            segments.append(segment)
    text = "/".join(segments)
    if absolute:
        return "/" + text
    return text or "."


# In a pattern segment, what each wildcard may match of a *word*. A user's `*` (WILD_STAR) can become
# any text, so only a pattern `*` covers it; a user's `?` is one character, also covered by `?`.
_SEG_STAR = "[^/]*"
_SEG_QMARK = f"[^/{WILD_STAR}]"
_NO_LEADING_DOT = r"(?!\.)"
_NON_EMPTY = "(?=[^/])"
# `**`: zero or more whole segments, none starting with `.` (the shell's globstar rule).
_ANY_SEGMENTS = r"(?:/(?!\.)[^/]+)*"


def _segment_regex(segment: str) -> str:
    # A segment is never empty (`/var/log/*` is not `/var/log/`), and its leading `.` must be written.
    lead = _NON_EMPTY if segment.startswith(".") else _NON_EMPTY + _NO_LEADING_DOT
    return lead + glob_regex(segment, star=_SEG_STAR, qmark=_SEG_QMARK)


def glob_regex(glob: str, *, star: str, qmark: str, double_star: str | None = None) -> str:
    """A shell glob as a regex: ``\\x`` literal, ``*``/``?``/``**`` as the caller says they match, ``[…]``
    classes (`glob_class`), everything else literal. One translator for the string and typed patterns."""
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
            out.append(star)
            i += 1
        elif ch == "?":
            out.append(qmark)
            i += 1
        elif ch == "[" and (cls := glob_class(glob, i)) is not None:
            out.append(cls[0])
            i = cls[1]
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


def glob_class(glob: str, start: int) -> tuple[str, int] | None:
    """The shell's ``[…]`` class at ``glob[start]`` as a regex, and the index after it; None when the ``[``
    opens no class (it is then a literal). One owner for both the string and the typed path patterns."""
    j = start + 1
    if j < len(glob) and glob[j] == "!":
        j += 1
    if j < len(glob) and glob[j] == "]":
        j += 1
    end = glob.find("]", j)
    if end < 0:
        return None
    body = glob[start + 1 : end]
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
    # A class never matches `/` nor a user's glob character (its expansion is unknown).
    return f"(?![/{WILD_STAR}{WILD_QMARK}])[{'^' if negate else ''}{body}]", end + 1


def path_glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a ``path`` pattern (already normalised) into a regex over a normalised word."""
    absolute = pattern.startswith("/")
    segments = [s for s in pattern.split("/") if s]
    parts: list[str] = []
    for n, segment in enumerate(segments):
        if segment == "**":
            # `/a/**` also matches `/a` itself, as globstar does; `/a/**/b` matches `/a/b`.
            parts.append(_ANY_SEGMENTS)
            continue
        sep = "/" if (n > 0 or absolute) else ""
        parts.append(sep + _segment_regex(segment))
    # The root `/` is matched as "" (no names), so `/` and `/**` match it. (A relative pattern never
    # starts with `**`, PathMatcher.parse refuses it, so "" is never a relative match.)
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class PathMatcher(WordMatcher):
    pattern: str
    regex: re.Pattern[str] = field(compare=False)
    covers_globs = True

    @classmethod
    def parse(cls, pattern: object) -> PathMatcher:
        if not isinstance(pattern, str) or not pattern:
            raise MatcherError("`path` needs a glob such as /var/log/nginx/*.log")
        if pattern.startswith("-"):
            raise MatcherError(f"`path` {pattern!r} starts with `-`, which would make it an option")
        if not pattern.startswith("/") and pattern.split("/", 1)[0] == "**":
            raise MatcherError(f"`path` {pattern!r}: a relative path cannot start with `**`; anchor it")
        if any(c in (WILD_STAR, WILD_QMARK) for c in pattern):
            raise MatcherError(f"`path` {pattern!r} contains a private-use character")
        normal = normalise_path(pattern)
        if normal is None:
            raise MatcherError(f"`path` {pattern!r} has a `..` segment; write the directory it means")
        for segment in normal.split("/"):
            if "**" in segment and segment != "**":
                raise MatcherError(f"`path` {pattern!r}: `**` must be a whole segment (/a/**/b)")
        return cls(normal, path_glob_regex(normal))

    def accepts(self, word: Word) -> bool:
        value = word.value
        if value.startswith("-"):
            return False
        normal = normalise_path(value)
        if normal is None:
            return False
        return self.regex.fullmatch("" if normal == "/" else normal) is not None

    def describe(self) -> str:
        return f"<path {self.pattern}>"

    def expected(self) -> str:
        return f"a path matching {self.pattern}"

    def why_not(self, word: Word) -> str | None:
        value = word.value
        if value.startswith("-"):
            return "an option is not a path"
        normal = normalise_path(value)
        if normal is None:
            return "`..` is never allowed in a path"
        if any(s.startswith(".") for s in normal.split("/")):
            return "a name starting with `.` is matched only by a pattern that writes the `.`"
        return None


@dataclass(frozen=True)
class GlobMatcher(WordMatcher):
    """A plain string of an ``argv:`` list: the glob semantics of ``bot.command_patterns``."""

    source: str
    regex: re.Pattern[str] = field(compare=False)
    literal: str | None
    literals: frozenset[str] = field(default=frozenset())
    # Its regex decides: only `*` covers a user's `*` (literals and classes never match a glob marker).
    covers_globs = True

    def accepts(self, word: Word) -> bool:
        value = word.value
        if self.literal is not None:
            return value == self.literal
        if value.startswith("-") and not self.source.startswith("-"):
            return False  # a wildcard is for a value, not an option (`grep * FILE` is not `grep -r`)
        return self.regex.fullmatch(value) is not None

    def describe(self) -> str:
        return self.source

    def expected(self) -> str:
        return f"`{self.source}`" if self.literal is not None else f"a word matching `{self.source}`"

    def why_not(self, word: Word) -> str | None:
        if self.literal is None and word.value.startswith("-") and not self.source.startswith("-"):
            return "a wildcard never matches an option"
        return None


@dataclass(frozen=True)
class AnyWord(WordMatcher):
    """The final ``**`` of an argv list: any remaining words (danger checks still apply)."""

    covers_globs = True

    def accepts(self, word: Word) -> bool:
        return True

    def describe(self) -> str:
        return "**"

    def expected(self) -> str:
        return "any words"


# -- elements and patterns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Element:
    """One word matcher or a sequence, with how often it appears (min 0 or 1; max 1 or unbounded)."""

    unit: WordMatcher | tuple[Element, ...]
    optional: bool = False
    repeat: bool = False

    def describe(self) -> str:
        if isinstance(self.unit, tuple):
            inner = " ".join(e.describe() for e in self.unit)
        else:
            inner = self.unit.describe()
            if isinstance(self.unit, (FlagMatcher, AnyWord)):
                return inner  # already "any number of"
        if self.repeat:
            inner += "…"
        return f"[{inner}]" if self.optional else inner


_MISPLACED_GLOB = ("an unquoted glob here can expand to several words that take the place of the words "
                   "after it; quote it, or name one file")


@dataclass
class Progress:
    """How far matching got (for "which pattern came closest and why"): the furthest word position and
    the matchers that failed there. Sentences are made only by ``expected``/``why``, for the one pattern
    a denial shows."""

    furthest: int = -1
    failures: list[tuple[WordMatcher, Word | None, bool]] = field(default_factory=list)
    end_ok_at: int = -1

    def failed(self, position: int, unit: WordMatcher, word: Word | None, misplaced_glob: bool = False) -> None:
        if position > self.furthest:
            self.furthest, self.failures = position, []
        if position == self.furthest:
            self.failures.append((unit, word, misplaced_glob))

    def reached(self, position: int) -> None:
        """The pattern may end here (the command could end at this word)."""
        if position > self.furthest:
            self.furthest, self.failures = position, []
        if position == self.furthest:
            self.end_ok_at = position

    def expected(self) -> list[str]:
        return list(dict.fromkeys(unit.expected() for unit, _, _ in self.failures))

    def why(self) -> list[str]:
        reasons = [_MISPLACED_GLOB if glob else unit.why_not(word) if word is not None else None
                   for unit, word, glob in self.failures]
        return [r for r in dict.fromkeys(reasons) if r]


def _glob_may_expand_here(word: Word, position: int, count: int, repeated: bool) -> bool:
    # The shell turns one glob word into several; only the last word, or a repetition, absorbs them.
    return not word.has_glob or repeated or position == count - 1


def _unit_ends(element: Element, words: Sequence[Word], starts: Iterable[int],
               progress: Progress | None, relax: bool) -> set[int]:
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
                  progress: Progress | None, relax: bool = False) -> set[int]:
    if not element.repeat:  # the common case, without the closure loop
        after = _unit_ends(element, words, starts, progress, relax)
        return after | starts if element.optional else after
    result = set(starts) if element.optional else set()
    current = starts
    seen = set(starts)
    while current:
        after = _unit_ends(element, words, current, progress, relax)
        result |= after
        if not element.repeat:
            break
        current = after - seen
        seen |= after
    return result


@dataclass(frozen=True)
class ArgvSequence:
    """A compiled typed pattern: does the whole argv match, and if not, how far did it get."""

    elements: tuple[Element, ...]
    # Fast path: the program names a matching command must start with (None: any).
    programs: frozenset[str] | None

    def matches(self, words: Sequence[Word], *, relax_glob_positions: bool = False) -> bool:
        """``relax_glob_positions``: ignore where user globs stand (to tell "a glob in the wrong place"
        from "no match" in a refusal; never to allow)."""
        if self.programs is not None and (not words or words[0].value not in self.programs):
            return False
        return len(words) in self._ends(words, None, relax_glob_positions)

    def progress(self, words: Sequence[Word]) -> Progress:
        progress = Progress()
        ends = self._ends(words, progress)
        if ends:
            progress.reached(max(ends))
        return progress

    def _ends(self, words: Sequence[Word], progress: Progress | None, relax: bool = False) -> set[int]:
        positions = {0}
        for element in self.elements:
            positions = _element_ends(element, words, positions, progress, relax)
            if not positions:
                break
        return positions

    def literals(self) -> frozenset[str]:
        found: set[str] = set()
        stack = list(self.elements)
        while stack:
            element = stack.pop()
            if isinstance(element.unit, tuple):
                stack.extend(element.unit)
            else:
                found |= element.unit.literals
        return frozenset(found)

    def describe(self) -> str:
        return " ".join(e.describe() for e in self.elements)


def first_programs(elements: Sequence[Element]) -> frozenset[str] | None:
    """The literal program names of a pattern, when its first element is a required literal."""
    if not elements:
        return None
    first = elements[0]
    if first.optional or isinstance(first.unit, tuple):
        return None
    unit = first.unit
    if isinstance(unit, GlobMatcher) and unit.literal is not None:
        return frozenset({unit.literal})
    if isinstance(unit, OneOfMatcher):
        return unit.literals
    return None
