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

Matching runs the pattern as an automaton over the words (``ArgvSequence``): each word is read once,
with no backtracking, so it is linear in the words whatever the pattern. Pure; no I/O.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

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

    def reads(self) -> str | None:
        """A regex (compiled with ``re.DOTALL``) that fully matches exactly the values of the words this
        matcher accepts, when one says it (globs, flag sets, one-of lists, ``**``, most paths); None when
        only Python can (an integer is compared). The automaton and the closest-pattern search then test
        a word with one C call (``reader``) instead of calling ``accepts``; ``tests/policy/test_reads.py``
        holds each to ``accepts``."""
        return None

    @functools.cached_property
    def reader(self) -> re.Pattern[str] | None:
        """``reads`` compiled. ``ArgvSequence`` asks for it when the pattern loads, so a compile never
        lands on a request."""
        source = self.reads()
        return None if source is None else reader_regex(source)


@functools.lru_cache(maxsize=4096)
def reader_regex(source: str) -> re.Pattern[str]:
    """A ``reads`` regex compiled, once per source at load (many matchers share one: ``*``, a flag set)."""
    return re.compile(source, re.DOTALL)


def glob_reads(literal: str | None, pattern: str, option: bool) -> str:
    """``reads`` of a glob word (typed ``GlobMatcher`` and plain ``argv`` alike), which both match with: a
    wildcard glob that does not itself start with ``-`` never matches an option."""
    if literal is not None:
        return re.escape(literal)
    return f"(?:{pattern})" if option else f"(?!-)(?:{pattern})"


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
    # The short flags as one string, for `str.strip`: a word of those letters strips to nothing, in C.
    letters: str = field(init=False, compare=False)
    # The set as a refusal shows it (`-cinv --count`), made once.
    shown: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        letters = "".join(sorted(self.short))
        object.__setattr__(self, "letters", letters)
        object.__setattr__(self, "shown", " ".join(([f"-{letters}"] if letters else []) + sorted(self.long)))

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
                and not value[1:].strip(self.letters))

    def describe(self) -> str:
        return f"[flags {self.shown}]"

    def expected(self) -> str:
        return f"flags from {self.shown}"

    def reads(self) -> str:
        words = [re.escape(flag) for flag in sorted(self.long)]
        if self.letters:
            words.append(f"-[{re.escape(self.letters)}]+")
        return "|".join(words)

    def why_not(self, word: Word) -> str | None:
        value = word.value
        if value.startswith("-") and not value.startswith("--"):
            bad = sorted({c for c in value[1:] if c not in self.short})
            if bad:
                return f"-{''.join(bad)} is not in the flag set {self.shown}"
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

    def reads(self) -> str:
        return "|".join(re.escape(w) for w in self.words)


@functools.lru_cache(maxsize=1024)
def normalise_path(value: str) -> str | None:
    """The path with ``//``, ``/./`` and a trailing ``/`` removed; None when it has a ``..`` segment
    (which could leave the directory a pattern names, through any symlink on the way). Remembered: a
    request's path is read by the path matchers of every rule it reaches, often ten times in a denial."""
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
    if not any(c in segment for c in "*?[\\"):
        return re.escape(segment)  # a plain name: never empty, and a leading `.` is written
    # A segment is never empty (`/var/log/*` is not `/var/log/`), and its leading `.` must be written.
    lead = _NON_EMPTY if segment.startswith(".") else _NON_EMPTY + _NO_LEADING_DOT
    return lead + glob_regex(segment, star=_SEG_STAR, qmark=_SEG_QMARK)


def glob_regex(glob: str, *, star: str, qmark: str, double_star: str | None = None) -> str:
    """A shell glob as a regex: ``\\x`` literal, ``*``/``?``/``**`` as the caller says they match, ``[…]``
    classes (`glob_class`), everything else literal. One translator for the string and typed patterns.

    Linear in the word, however many stars: a regex ``a*b*c`` backtracks over every way to share the word
    between its stars (seconds for `*a*b*c*d*` and a 4,000-character word a user can send), so each part
    between two stars is matched where it first fits, atomically. That loses no match: every part is a
    fixed number of characters, and the star after it can take what the star before it could. Not so
    where a ``**`` (any characters) is followed by a ``*`` (no `/`): that part keeps the plain form, as a
    later fit may be the only one. A word with such a ``**`` can still take quadratic time (~0.1 s for
    `**a*b**c` and 4,000 characters without a `/`); a regex engine without backtracking would be needed."""
    chunks: list[list[str]] = [[]]  # the parts between stars
    stars: list[str] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "\\" and i + 1 < len(glob):
            chunks[-1].append(re.escape(glob[i + 1]))
            i += 2
        elif ch == "*" and double_star is not None and glob.startswith("**", i):
            stars.append(double_star)
            chunks.append([])
            i += 2
        elif ch == "*":
            stars.append(star)
            chunks.append([])
            i += 1
        elif ch == "?":
            chunks[-1].append(qmark)
            i += 1
        elif ch == "[" and (cls := glob_class(glob, i)) is not None:
            chunks[-1].append(cls[0])
            i = cls[1]
        else:
            chunks[-1].append(re.escape(ch))
            i += 1
    parts = ["".join(chunk) for chunk in chunks]
    out = [parts[0]]
    for n, (before, part) in enumerate(zip(stars, parts[1:], strict=True)):
        after = stars[n + 1] if n + 1 < len(stars) else None
        # Where it first fits is safe when the next star can take whatever this one could.
        if after is not None and after in (before, double_star):
            out.append(f"(?>{before}?{part})")
        else:
            out.append(before + part)
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
    """Compile a ``path`` pattern (already normalised) into a regex over a normalised word. As in
    ``glob_regex``, the names between two ``**`` are matched where they first fit, atomically (and only as
    whole names): two or more ``**`` would otherwise backtrack over every way to share a long word's names
    between them (cubic for three). No match is lost, since every ``**`` may take the same names."""
    out: list[str] = []
    pending: list[str] | None = None  # the parts after a `**` that is not the last
    parts = _path_parts(pattern)
    globstars = [kind for kind, _ in parts].count("**")
    for kind, segment in parts:
        if kind == "**":
            # `/a/**` also matches `/a` itself, as globstar does; `/a/**/b` matches `/a/b`.
            if pending is not None:
                out.append(f"(?>{_ANY_SEGMENTS}?{''.join(pending)}(?=/|\\Z))")
            globstars -= 1
            if globstars:
                pending = []
            else:
                pending = None
                out.append(_ANY_SEGMENTS)
            continue
        piece = ("/" if kind == "/" else "") + _segment_regex(segment)
        if pending is not None:
            pending.append(piece)
        else:
            out.append(piece)
    # The root `/` is matched as "" (no names), so `/` and `/**` match it. (A relative pattern never
    # starts with `**`, PathMatcher.parse refuses it, so "" is never a relative match.)
    return re.compile("".join(out), re.DOTALL)


def _path_parts(pattern: str) -> list[tuple[str, str]]:
    """A normalised ``path`` pattern's parts, in order: ("**", "**"), ("/", a segment after a `/`) or ("",
    the first segment of a relative pattern)."""
    absolute = pattern.startswith("/")
    return [("**" if segment == "**" else "/" if (n > 0 or absolute) else "", segment)
            for n, segment in enumerate(s for s in pattern.split("/") if s)]


# The word as typed, before normalising (``path_reads``): between names any run of `/` and `.` segments,
# which normalising drops. A name is never `.` (dropped) nor `..` (refused); nothing else can hold a `..`
# segment, so a word with one never matches.
_RAW_SEP = r"/(?:\.?/)*"
_RAW_END = r"(?:/\.?)*"
_RAW_NAME = r"(?!\.\.?(?:/|\Z))"  # needed only where the name's regex may match `.` (a glob written `.…`)


def path_reads(pattern: str) -> str:
    """The regex ``PathMatcher.reads``: the words, *as typed*, whose normal form the pattern matches (no
    option, no ``..`` segment; ``//``, ``/./`` and a trailing ``/`` allowed wherever normalising removes
    them), so a path is tested with one C call, without normalising it first."""
    body: list[str] = []
    for kind, segment in _path_parts(pattern):
        if kind == "**":
            body.append(f"(?:{_RAW_SEP}(?!\\.)[^/]+)*")
            continue
        part = _segment_regex(segment)
        guard = _RAW_NAME if segment.startswith(".") and part != re.escape(segment) else ""
        body.append((_RAW_SEP if kind == "/" else "") + guard + part)
    head = "(?!-)"
    if pattern.startswith("/"):
        return f"{head}(?=/){''.join(body)}{_RAW_END}"
    # A relative word may start with `.` segments; with nothing else it normalises to `.`.
    relative = f"{head}(?!/)(?:\\.(?:/\\.?)*/)?{''.join(body)}{_RAW_END}"
    if path_glob_regex(pattern).fullmatch(".") is not None:
        relative += f"|{head}(?:\\.(?:/\\.?)*)?"
    return relative


@dataclass(frozen=True)
class PathMatcher(WordMatcher):
    pattern: str
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
        matcher = cls(normal)
        if matcher.reader is None:
            matcher.regex  # noqa: B018 - `accepts` decides with it: compiled now, at load, not on a request
        return matcher

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        """The pattern over a *normalised* word: what ``accepts`` says, by its definition. With a
        ``reader`` (most paths), requests never need it, so it compiles only when first asked."""
        return path_glob_regex(self.pattern)

    def accepts(self, word: Word) -> bool:
        """The meaning, as documented: normalise, then match. ``reads`` says the same as one regex."""
        value = word.value
        if value.startswith("-"):
            return False
        normal = normalise_path(value)
        if normal is None:
            return False
        return self.regex.fullmatch("" if normal == "/" else normal) is not None

    def reads(self) -> str | None:
        # With two `**` or more, the names between them are matched atomically (``path_glob_regex``); the
        # raw form's runs of `/` and `.` would make that backtrack again, so those keep normalise-then-match.
        return path_reads(self.pattern) if self.pattern.split("/").count("**") < 2 else None

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
        if normal.startswith(".") or "/." in normal:  # a segment starts with `.` (normal: no `/./` left)
            return "a name starting with `.` is matched only by a pattern that writes the `.`"
        return None


@dataclass(frozen=True)
class GlobMatcher(WordMatcher):
    """A plain string of an ``argv:`` list: the glob semantics of ``bot.command_patterns``."""

    source: str
    pattern: str = field(compare=False)  # the glob as a regex (``bot.command_patterns``), compiled as ``reader``
    literal: str | None
    literals: frozenset[str] = field(default=frozenset())
    # Its regex decides: only `*` covers a user's `*` (literals and classes never match a glob marker).
    covers_globs = True

    def accepts(self, word: Word) -> bool:
        if self.literal is not None:
            return word.value == self.literal
        # Its reader is exact for a glob, the option rule included: a wildcard is for a value, not an
        # option (`grep * FILE` is not `grep -r`).
        return self.reader.fullmatch(word.value) is not None

    def describe(self) -> str:
        return self.source

    def expected(self) -> str:
        return f"`{self.source}`" if self.literal is not None else f"a word matching `{self.source}`"

    def reads(self) -> str:
        return glob_reads(self.literal, self.pattern, self.source.startswith("-"))

    @functools.cached_property
    def reader(self) -> re.Pattern[str]:
        return reader_regex(self.reads())  # a glob always has one (``WordMatcher.reader``)

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

    def reads(self) -> str:
        return ".*"


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


class Progress(NamedTuple):
    """How far matching got (for "which pattern came closest and why"): the furthest word position, the
    matchers that failed there (each with the word, and whether only the glob rule refused it), and
    whether the pattern could end there. Sentences are made only by ``expected``/``why``, for the one
    pattern a denial shows. (A named tuple: one is built per denial, at a third of a dataclass's cost.)"""

    furthest: int
    failures: list[tuple[WordMatcher, Word | None, bool]]
    end_ok_at: int

    def expected(self) -> list[str]:
        return list(dict.fromkeys(unit.expected() for unit, _, _ in self.failures))

    def why(self) -> list[str]:
        reasons = [_MISPLACED_GLOB if glob else unit.why_not(word) if word is not None else None
                   for unit, word, glob in self.failures]
        return [r for r in dict.fromkeys(reasons) if r]


# One state of the automaton: its bit, its word matcher, whether its own element repeats (a glob the shell
# expands there lands its extra words in the same repetition), and its reader's ``fullmatch`` when it has
# one (None: call ``accepts``).
_State = tuple[int, WordMatcher, bool, Callable[[str], object] | None]
# How many state sets an automaton remembers the successors of (a few per pattern in practice).
_MEMO_LIMIT = 256


class ArgvSequence:
    """A compiled typed pattern: does the whole argv match, and if not, how far did it get.

    The elements become a Glushkov automaton: one state per word matcher (a matcher inside a repeated
    ``seq`` is still one state), and for each state the bitmask of the states that may match the next
    word. Matching reads each word once, trying only the matchers that may come next: linear in the
    words whatever the pattern, no backtracking, and no set built per element."""

    __slots__ = ("elements", "programs", "_states", "_first", "_last", "_nullable", "_follow", "_tries",
                 "_next", "_enders")

    def __init__(self, elements: tuple[Element, ...], programs: frozenset[str] | None) -> None:
        self.elements = elements
        # Fast path: the program names a matching command must start with (None: any).
        self.programs = programs
        self._states: list[_State] = []
        self._follow: list[int] = []
        self._nullable, self._first, self._last = self._concatenation(elements)
        # Memos, filled now for the sets every run meets (one state matched at a time, mostly) so that a
        # pattern a request reaches for the first time costs no more than one it reached before.
        self._tries: dict[int, tuple[_State, ...]] = {}  # state set -> its states, in pattern order
        self._next: dict[int, int] = {}  # matched state set -> the states that may match the next word
        for n, (bit, *_) in enumerate(self._states):
            self._next[bit] = self._follow[n]
        for states in (self._first, self._last, *self._follow):
            self._states_of(states)
        self._enders = self._tries[self._last]  # the states that may end the pattern

    def _concatenation(self, elements: Sequence[Element]) -> tuple[bool, int, int]:
        nullable, first, last = True, 0, 0
        for element in elements:
            n, f, lst = self._element(element)
            for state in _bits(last):
                self._follow[state] |= f
            if nullable:
                first |= f
            last = lst | (last if n else 0)
            nullable = nullable and n
        return nullable, first, last

    def _element(self, element: Element) -> tuple[bool, int, int]:
        unit = element.unit
        if isinstance(unit, tuple):
            nullable, first, last = self._concatenation(unit)
        else:
            bit = 1 << len(self._states)
            reader = unit.reader  # compiled now, at load
            self._states.append((bit, unit, element.repeat, None if reader is None else reader.fullmatch))
            self._follow.append(0)
            nullable, first, last = False, bit, bit
        if element.repeat:
            for state in _bits(last):
                self._follow[state] |= first
        return nullable or element.optional, first, last

    def _states_of(self, states: int) -> tuple[_State, ...]:
        found = self._tries.get(states)
        if found is None:
            found = tuple(self._states[n] for n in _bits(states))
            if len(self._tries) < _MEMO_LIMIT:
                self._tries[states] = found
        return found

    def _after(self, matched: int) -> int:
        found = self._next.get(matched)
        if found is None:
            found = 0
            for state in _bits(matched):
                found |= self._follow[state]
            if len(self._next) < _MEMO_LIMIT:
                self._next[matched] = found
        return found

    def read(self, words: Sequence[Word], relax: bool = False) -> tuple[int, int, int]:
        """(words read, the states that matched the last word read, the states that may read the next
        one): reading stops at the first word no state accepts. The words read are how close the pattern
        came (``progress(words).furthest``)."""
        count = len(words)
        last = count - 1
        candidates = self._first
        previous = 0
        tries, after = self._tries, self._next
        start = 0
        if self.programs is not None and count and words[0].value in self.programs:
            # The program's state is the only first one, and a name it lists is never a glob: read it as read.
            start, previous = 1, candidates
            candidates = after[candidates]
        for i in range(start, count):
            word = words[i]
            value = word.value
            matched = 0
            glob = word.has_glob
            for bit, unit, repeated, fullmatch in tries.get(candidates) or self._states_of(candidates):
                # A glob the shell expands into several words is accepted only by a matcher that covers
                # every expansion, where the extra words cannot shift into the matchers after it.
                if (fullmatch(value) is not None if fullmatch is not None else unit.accepts(word)) and (
                        not glob or (unit.covers_globs and (relax or repeated or i == last))):
                    matched |= bit
            if not matched:
                return i, previous, candidates
            previous = matched
            candidates = after.get(matched) or self._after(matched)
        return count, previous, candidates

    def matches(self, words: Sequence[Word], *, relax_glob_positions: bool = False) -> bool:
        """``relax_glob_positions``: ignore where user globs stand (to tell "a glob in the wrong place"
        from "no match" in a refusal; never to allow)."""
        if self.programs is not None and (not words or words[0].value not in self.programs):
            return False
        if words:
            # Some state that may end the pattern must accept the last word (where a glob may stand). Patterns
            # for one program differ mostly in their last words, so most misses show here, before a run.
            word = words[-1]
            value = word.value
            glob = word.has_glob
            for _, unit, _, fullmatch in self._enders:
                if (fullmatch(value) is not None if fullmatch is not None else unit.accepts(word)) and (
                        not glob or unit.covers_globs):
                    break
            else:
                return False
        read, matched, _ = self.read(words, relax_glob_positions)
        return read == len(words) and (bool(matched & self._last) if words else self._nullable)

    def progress(self, words: Sequence[Word]) -> Progress:
        read, matched, candidates = self.read(words, False)
        word = words[read] if read < len(words) else None
        failures: list[tuple[WordMatcher, Word | None, bool]] = []
        for _, unit, _, _ in self._states_of(candidates):
            # At the word reading stopped at, every matcher that may come next refused it, some only
            # because of where a glob stands; at the end of the command, each is what was missing.
            misplaced = word is not None and word.has_glob and unit.covers_globs and unit.accepts(word)
            failures.append((unit, word, misplaced))
        can_end = bool(matched & self._last) if read else self._nullable
        return Progress(read, failures, read if can_end else -1)

    def readers(self, at: int) -> tuple[WordMatcher, ...]:
        """The matchers that could read word ``at`` (0-based): those that may follow the program's when
        ``at`` is 1 and the pattern names its program (a word that is not one of its names stops the run
        at word 0), every matcher otherwise."""
        if at == 1 and self.programs is not None:
            states = self._tries[self._next[self._first]]
        else:
            states = tuple(self._states)
        return tuple({id(unit): unit for _, unit, *_ in states}.values())

    def literals(self) -> frozenset[str]:
        found: set[str] = set()
        for _, unit, *_ in self._states:
            found |= unit.literals
        return frozenset(found)

    def describe(self) -> str:
        return " ".join(e.describe() for e in self.elements)


def _bits(mask: int) -> list[int]:
    """The positions of the set bits of ``mask``, lowest first."""
    found = []
    while mask:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


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
