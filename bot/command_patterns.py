"""Command patterns of policy rules: compiled once when the policy loads, matched per simple command.

Two kinds (see docs in ``bot/policy.py``):

* **argv**: one glob per word. ``*`` matches within a word but never crosses ``/`` (so
  ``/var/log/nginx/*`` cannot reach ``/etc/shadow`` or a subdirectory); ``**`` inside a word also
  crosses ``/``; ``?`` is one character other than ``/``; ``[abc]``/``[!abc]`` are classes; ``\\*``
  is a literal ``*``. A whole word ``**`` as the last item matches any number of remaining words.
  A wildcard word never matches an option (a word starting with ``-``) unless the pattern word
  itself starts with ``-`` (``-*``, ``--lines=*``): ``grep * FILE`` allows a search term, not ``-r``.
  A glob the *user* typed unquoted (the shell will expand it) can only be covered by a pattern ``*``
  or ``**``, never by a literal character or ``?``: every file name the shell could substitute then
  still matches the pattern, because shell globs never cross ``/`` either. It may only stand in the
  last fixed word (or under ``**``): elsewhere its several file names would shift into the positions
  after it (``grep s* FILE`` → ``grep secrets.yml settings.py FILE``).
* **regex**: a full match against the simple command normalized as its words, each shell-quoted
  (``shlex.quote``) and joined by one space: ``grep 'a b' /var/log/x`` for any way of typing it.
  Commands with unquoted globs never match a regex (its meaning under expansion is unknowable).

Whatever matched, words that a pattern did not name *literally* are refused when they are:
``..`` path segments (traversal), a program that runs other programs (``sh``, ``env``, ``xargs``,
``find``, ``awk``, interpreters …) in command position, an argument that runs programs
(``-exec``, ``--to-command`` …), or an awk program using ``system``/``getline``/pipes/redirects.
For a regex, "literally" means the word appears verbatim in the regex source, and `..` segments are
never allowed.
"""

from __future__ import annotations

import itertools
import re
import shlex
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.argv_matchers import (
    AnyWord,
    ArgvSequence,
    Element,
    FlagMatcher,
    GlobMatcher,
    IntMatcher,
    MatcherError,
    OneOfMatcher,
    PathMatcher,
    Progress,
    WordMatcher,
    first_programs,
    glob_reads,
    glob_regex,
    reader_regex,
)
from bot.fast_init import fast_init
from bot.regex_shapes import backtracking_problem
from bot.shell_syntax import WILD_CHARS, WILD_QMARK, WILD_STAR, Refusal, SimpleCommand, Word

# Programs that run other programs or code given in their arguments (or change how one runs).
DANGEROUS_PROGRAMS = frozenset({
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox", "toybox",
    "env", "xargs", "exec", "eval", "command", "builtin", "source", ".", "nohup", "setsid", "timeout",
    "nice", "ionice", "chroot", "sudo", "su", "doas", "runuser", "strace", "ltrace", "gdb", "watch",
    "time", "stdbuf", "taskset", "parallel", "script", "expect", "unbuffer", "flock", "chrt", "prlimit",
    "perl", "python", "python2", "python3", "ruby", "node", "nodejs", "php", "lua", "tclsh", "wish",
    "awk", "gawk", "mawk", "nawk", "find", "sed", "vi", "vim", "nvim", "less", "more", "man", "ed", "ex",
    "ssh", "scp", "rsync", "nc", "ncat", "socat", "curl", "wget", "tar", "zip", "git", "make", "dd",
})
# Arguments that make an otherwise harmless program run something (find, tar, rsync, git, ssh, ...).
DANGEROUS_ARGS = frozenset({"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprintf", "-fls"})
DANGEROUS_ARG_PREFIXES = (
    "--to-command", "--checkpoint-action", "--use-compress-program", "--rsh", "--upload-pack",
    "--receive-pack", "--exec", "-oproxycommand", "-olocalcommand", "--pager", "--config-env",
)
AWK_PROGRAMS = frozenset({"awk", "gawk", "mawk", "nawk"})
_AWK_DANGER = re.compile(r"system|getline|[|>]|ENVIRON")
# A `..` path segment, also after `--opt=` or `host:`.
_TRAVERSAL = re.compile(r"(?:^|[/=:])\.\.(?:/|$)")
# Every argument ``_danger`` could refuse for a program that is not awk matches this: a `..` segment, an
# option that runs programs (prefixes in any case), or any non-ASCII text (``str.lower`` turns a few
# letters into ASCII ones). One C call clears most words before the checks that say why.
_MAYBE_DANGEROUS_ARG = re.compile(
    _TRAVERSAL.pattern + "|^(?:" + "|".join(map(re.escape, sorted(DANGEROUS_ARGS))) + ")$|^(?i:"
    + "|".join(map(re.escape, DANGEROUS_ARG_PREFIXES)) + r")|[^\x00-\x7f]")


class PatternError(ValueError):
    """A pattern in the policy file is invalid (the caller adds the rule name)."""


# Where in a pipeline a pattern applies. A filter (`sort`, `wc -l`) as the first command reads the
# session's stdin, which never ends: it would hold a run slot until the timeout.
Position = Literal["any", "first", "filter"]


def position_allows(position: Position, index: int) -> bool:
    """Whether a pattern for ``position`` may match the simple command at ``index`` of its pipeline."""
    return position == "any" or (index == 0) == (position == "first")


@fast_init  # one per denial (bot/fast_init.py)
@dataclass(frozen=True)
class Closest:
    """How near a pattern came to a command it did not match: the word (1-based; one past the last when
    the command ended too early), what the pattern expected there, what was given, and why if known."""

    pattern: str
    word: int
    expected: str
    given: str
    why: str | None = None
    score: int = 0  # words matched before the difference (higher is closer)

    def sentence(self) -> str:
        where = f"word {self.word}"
        text = f"closest pattern {self.pattern}: {where} should be {self.expected}, given {self.given}"
        return text + (f" ({self.why})" if self.why else "")


# -- glob translation --------------------------------------------------------------------------------

_NOT_SLASH_OR_WILD = f"[^/{WILD_STAR}{WILD_QMARK}]"


def _glob_to_regex(glob: str) -> str:
    """Translate one argv glob into a regex over a word value (see the module docstring)."""
    return glob_regex(glob, star="[^/]*", qmark=_NOT_SLASH_OR_WILD, double_star=".*")



def _is_literal(glob: str) -> bool:
    """True when the glob has no unescaped wildcard (``\\*`` is a literal star)."""
    i = 0
    while i < len(glob):
        if glob[i] == "\\":
            i += 2
            continue
        if glob[i] in "*?[":
            return False
        i += 1
    return True


# -- outcomes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternOutcome:
    """``matched``: the pattern accepts the command. ``refusal``: the pattern's shape fits but a word it
    did not name literally is dangerous (more useful to report than "no match")."""

    matched: bool
    refusal: Refusal | None = None


NO_MATCH = PatternOutcome(False)
MATCH = PatternOutcome(True)


def _danger(word: Word, index: int, program: str) -> Refusal | None:
    """Why ``word`` (at argv ``index`` of ``program``) may not be matched by a wildcard, if it may not."""
    if index and program not in AWK_PROGRAMS and _MAYBE_DANGEROUS_ARG.search(word.value) is None:
        return None
    if _TRAVERSAL.search(word.value):
        return Refusal("traversal", f"`{word.display}`",
                       "`..` leaves the directory the rule allows; write the path without `..`")
    if index == 0 and program in DANGEROUS_PROGRAMS:
        return Refusal("dangerous", f"`{word.display}`",
                       f"`{program}` can run other commands or change files, so only a rule that names "
                       "it literally allows it")
    if index > 0:
        lowered = word.value.lower()
        if word.value in DANGEROUS_ARGS or lowered.startswith(DANGEROUS_ARG_PREFIXES):
            return Refusal("dangerous", f"`{word.display}`",
                           "this option runs other commands or changes files, so only a rule that names "
                           "it literally allows it")
        if program in AWK_PROGRAMS and _AWK_DANGER.search(word.value):
            return Refusal("dangerous", f"`{word.display}`",
                           "this awk program can run commands or write files (system, getline, | or >), "
                           "so only a rule that names it literally allows it")
    return None


def _program(words: Sequence[Word]) -> str:
    return words[0].value.rpartition("/")[2] if words else ""  # posixpath.basename, without two calls


# -- compiled patterns -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _GlobWord:
    pattern: str  # the glob as a regex (``_glob_to_regex``), compiled only as ``reader``
    literal: str | None  # the exact word when the glob has no wildcards
    option: bool  # the glob itself starts with `-`, so it may match options
    # ``reads`` compiled, at load: exactly the words this glob matches, the option rule included (argument
    # injection: `grep * FILE` is for a search term, not `-r` or `--file=…`), in one C call.
    reader: re.Pattern[str]

    def matches(self, value: str) -> bool:
        if self.literal is not None:
            return value == self.literal
        return self.reader.fullmatch(value) is not None

    def accepts(self, word: Word) -> bool:
        return self.matches(word.value)

    def reads(self) -> str:
        return glob_reads(self.literal, self.pattern, self.option)


def _glob_word(glob: str) -> _GlobWord:
    pattern = _glob_to_regex(glob)
    literal = _unescape(glob) if _is_literal(glob) else None
    option = glob.startswith("-")
    return _GlobWord(pattern, literal, option, reader_regex(glob_reads(literal, pattern, option)))


class ArgvPattern:
    """``argv: [...]`` compiled."""

    # Slots: a request reaches a few patterns of each of several rules, seldom the same ones twice, so
    # each attribute read is often a cache miss; one less indirection per read shows.
    __slots__ = ("position", "source", "described", "expected", "rest", "words", "programs", "backwards",
                 "wildcards")

    def __init__(self, argv: Sequence[str], position: Position = "any") -> None:
        self.position = position
        if not argv:
            raise PatternError("an argv pattern needs at least one word")
        for n, word in enumerate(argv):
            if not isinstance(word, str) or not word:
                raise PatternError(f"argv word {n + 1} must be a non-empty string")
            if word == "**" and n != len(argv) - 1:
                raise PatternError("`**` (any remaining words) can only be the last argv word")
            if any(c in WILD_CHARS for c in word):
                raise PatternError(f"argv word {n + 1} contains a private-use character")
        if argv[0] == "**":
            raise PatternError("the program (first argv word) cannot be `**`")
        self.source = tuple(argv)
        self.described = "`" + " ".join(self.source) + "`" + _position_note(position)  # made once, not per refusal
        self.expected = tuple(_glob_expected(w) for w in argv)
        self.rest = argv[-1] == "**"
        fixed = argv[:-1] if self.rest else argv
        self.words = tuple(_glob_word(w) for w in fixed)
        program = self.words[0].literal
        self.programs = None if program is None else frozenset({program})
        # Last word first: patterns for the same program differ mostly in their later words (the paths),
        # so most misses show there at once. All must match, so the order changes nothing else. Each word
        # is tested inline (``_GlobWord.matches`` without the call): its literal, or its reader regex.
        self.backwards = tuple((index, glob.literal, glob.reader.fullmatch)
                               for index, glob in reversed(list(enumerate(self.words))))
        self.wildcards = tuple(index for index, glob in enumerate(self.words) if glob.literal is None)

    def describe(self) -> str:
        return self.described

    def readers(self, at: int) -> tuple[_GlobWord, ...] | None:
        """The matchers that could read word ``at`` (see ``PatternsByProgram.may_beat``); None: any word."""
        if at < len(self.words):
            return (self.words[at],)
        return None if self.rest else ()

    def score(self, command: SimpleCommand) -> int:
        """Words matched before the first difference (cheap: no sentence is made)."""
        words = command.words
        for index, glob in enumerate(self.words):
            if index >= len(words) or not glob.matches(words[index].value):
                return index
        return len(self.words)

    def closest(self, command: SimpleCommand) -> Closest:
        words = command.words
        for index, glob in enumerate(self.words):
            if index >= len(words):
                return Closest(self.describe(), index + 1, self.expected[index], "nothing", score=index)
            if not glob.matches(words[index].value):
                return Closest(self.describe(), index + 1, self.expected[index],
                               f"`{words[index].display}`", score=index)
        n = len(self.words)
        given = f"`{words[n].display}`" if n < len(words) else "nothing"
        return Closest(self.describe(), n + 1, "the end of the command", given, score=n)

    def match(self, command: SimpleCommand) -> PatternOutcome:
        words = command.words
        n = len(self.words)
        if len(words) != n and (len(words) < n or not self.rest):
            return NO_MATCH
        for index, literal, fullmatch in self.backwards:
            value = words[index].value
            if value != literal if literal is not None else fullmatch(value) is None:
                return NO_MATCH
        for word in words[: n - 1] if command.has_glob else ():
            if word.has_glob:
                # The shell expands it into *several* words, which shift into the positions after it:
                # `grep s* /var/log/app/x.log` becomes `grep secret.yml settings.py /var/log/app/x.log`,
                # reading files of the working directory that `grep * FILE` never meant to allow.
                return PatternOutcome(False, Refusal(
                    "glob", f"`{word.display}`",
                    "an unquoted glob before the last argument can expand to several file names that take "
                    "the place of the arguments after it; quote it, or name one file"))
        program = _program(words)
        # A word the pattern names literally is never dangerous: only its wildcard words and those under a
        # final `**` are checked.
        for index in self.wildcards if len(words) == n else (*self.wildcards, *range(n, len(words))):
            refusal = _danger(words[index], index, program)
            if refusal is not None:
                return PatternOutcome(False, refusal)
        return MATCH


class RegexPattern:
    """``regex: '...'`` compiled; full match against the normalized simple command."""

    __slots__ = ("regex", "source", "position", "programs")  # as ArgvPattern's

    def __init__(self, source: str, position: Position = "any") -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # as for redaction patterns (check_pattern)
                self.regex = re.compile(source)
        except re.error as exc:
            raise PatternError(f"invalid regex {source!r}: {exc}") from None
        # The same guard redaction patterns get: `(a+)+$` takes seconds on 26 characters, on the ack path.
        problem = backtracking_problem(source)
        if problem:
            raise PatternError(f"regex {source!r} could take exponential time ({problem}); rewrite it "
                               "without nested repeats or back-references, or use typed argv matchers")
        self.source = source
        self.position = position
        program = _regex_program(source, self.regex)
        self.programs = None if program is None else frozenset({program})

    def describe(self) -> str:
        return f"regex `{self.source}`" + _position_note(self.position)

    def readers(self, at: int) -> None:
        return None  # a regex may read any word

    def score(self, command: SimpleCommand) -> int:
        return 0  # a regex says nothing about where it stopped matching

    def closest(self, command: SimpleCommand) -> Closest:
        return Closest(self.describe(), 1, "text the regex matches", f"`{clip_words(command)}`")

    def match(self, command: SimpleCommand) -> PatternOutcome:
        if command.has_glob:
            return NO_MATCH
        if self.regex.fullmatch(command.normalized) is None:
            return NO_MATCH
        program = _program(command.words)
        for index, word in enumerate(command.words):
            refusal = _danger(word, index, program) if word.value not in self.source else None
            if refusal is None and _TRAVERSAL.search(word.value):
                refusal = _danger(word, index, program)
            if refusal is not None:
                return PatternOutcome(False, refusal)
        return MATCH


# A regex that starts with a program name and a space (`^curl -s …`) can only match a command whose first
# word is that name: the normalized text begins with the first word shell-quoted, and a quoted word is the
# word itself only when it needs no quotes. Only this plain shape is read (no `|` anywhere, no quantifier on
# the space, no case-insensitive or verbose flag); any other regex may match any program.
_REGEX_PROGRAM = re.compile(r"\^?([A-Za-z0-9_][A-Za-z0-9_-]*)(?: (?![*+?{])|\$?\Z)")


def _regex_program(source: str, regex: re.Pattern[str]) -> str | None:
    """The program every command ``regex`` matches starts with, when its source says so plainly."""
    if "|" in source or regex.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    found = _REGEX_PROGRAM.match(source)
    return found.group(1) if found is not None else None


def _unescape(glob: str) -> str:
    return re.sub(r"\\(.)", r"\1", glob)


def _glob_expected(glob: str) -> str:
    return f"`{_unescape(glob)}`" if _is_literal(glob) else f"a word matching `{glob}`"


def _position_note(position: Position) -> str:
    return {"any": "", "first": " (first command only)", "filter": " (only after `|`)"}[position]


def clip_words(command: SimpleCommand, limit: int = 80) -> str:
    text = " ".join(w.display for w in command.words)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- typed patterns --------------------------------------------------------------------------------------


class IntRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = 0
    max: int


class MatcherSpec(BaseModel):
    """One argv item written as a mapping: exactly one matcher key, plus ``optional``/``repeat``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    int_: IntRange | None = Field(default=None, alias="int")
    flags: str | tuple[str, ...] | None = None
    path: str | None = None
    one_of: tuple[str, ...] | None = None
    glob: str | None = None
    seq: tuple[Any, ...] | None = None
    optional: bool = False
    repeat: bool = False


_MATCHER_KEYS = ("int", "flags", "path", "one_of", "glob", "seq")


def _spec_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key `{where}` (use one of {', '.join(_MATCHER_KEYS)}, optional, repeat)"
    return f"`{where}`: {str(err['msg']).removeprefix('Value error, ')}"


def _element(item: object, label: str, *, last: bool) -> Element:
    if isinstance(item, str):
        if not item:
            raise PatternError(f"{label} must be a non-empty string")
        if any(c in WILD_CHARS for c in item):
            raise PatternError(f"{label} contains a private-use character")
        if item == "**":
            if not last:
                raise PatternError("`**` (any remaining words) can only be the last argv word")
            return Element(AnyWord(), optional=True, repeat=True)
        literal = _unescape(item) if _is_literal(item) else None
        return Element(GlobMatcher(item, _glob_to_regex(item), literal, frozenset({literal} if literal else ())))
    if not isinstance(item, dict):
        raise PatternError(f"{label} must be a word or a mapping such as {{int: {{min: 1, max: 100}}}}")
    try:
        spec = MatcherSpec.model_validate(item)
    except ValidationError as exc:
        raise PatternError(f"{label}: {_spec_error(exc)}") from None
    given = [k for k in _MATCHER_KEYS if k in item]
    if len(given) != 1:
        raise PatternError(f"{label} needs exactly one of {', '.join(_MATCHER_KEYS)}"
                           + (f" (it has {', '.join(given)})" if given else ""))
    try:
        if spec.int_ is not None:
            return Element(IntMatcher(spec.int_.min, spec.int_.max), spec.optional, spec.repeat)
        if spec.flags is not None:
            # A flag set is any number of flag words, none included: "any combination".
            return Element(FlagMatcher.parse(spec.flags), optional=True, repeat=True)
        if spec.path is not None:
            return Element(PathMatcher.parse(spec.path), spec.optional, spec.repeat)
        if spec.one_of is not None:
            return Element(OneOfMatcher.parse(spec.one_of), spec.optional, spec.repeat)
        if spec.glob is not None:
            if spec.glob == "**":
                raise PatternError(f"{label}: write `**` as a plain word, last")
            inner = _element(spec.glob, label, last=False)
            return Element(inner.unit, spec.optional, spec.repeat)
    except MatcherError as exc:
        raise PatternError(f"{label}: {exc}") from None
    assert spec.seq is not None
    if not spec.seq:
        raise PatternError(f"{label}: `seq` needs at least one word")
    inner_elements = tuple(_element(x, f"{label}, seq item {n}", last=False)
                           for n, x in enumerate(spec.seq, start=1))
    return Element(inner_elements, spec.optional, spec.repeat)


class TypedPattern:
    """``argv:`` with at least one typed matcher (``bot.argv_matchers``)."""

    def __init__(self, items: Sequence[object], position: Position = "any") -> None:
        if not items:
            raise PatternError("an argv pattern needs at least one word")
        elements = tuple(_element(item, f"argv word {n}", last=n == len(items))
                         for n, item in enumerate(items, start=1))
        first = elements[0]
        if first.optional or isinstance(first.unit, AnyWord):
            raise PatternError("the program (first argv word) must be required: write its name")
        self.sequence = ArgvSequence(elements, first_programs(elements))
        self.programs = self.sequence.programs
        self.literals = self.sequence.literals()
        self.position = position
        self.text = self.sequence.describe()

    def describe(self) -> str:
        return f"`{self.text}`" + _position_note(self.position)

    def match(self, command: SimpleCommand) -> PatternOutcome:
        words = command.words
        if not self.sequence.matches(words):
            if command.has_glob and self.sequence.matches(words, relax_glob_positions=True):
                glob = next(w for w in words[:-1] if w.has_glob)
                return PatternOutcome(False, Refusal(
                    "glob", f"`{glob.display}`",
                    "an unquoted glob here can expand to several file names that take the place of the "
                    "words after it; quote it, or name one file"))
            return NO_MATCH
        program = _program(words)
        literals = self.literals
        for index, word in enumerate(words):
            if word.value in literals:
                continue  # a word the pattern names literally is never dangerous
            refusal = _danger(word, index, program)
            if refusal is not None:
                return PatternOutcome(False, refusal)
        return MATCH

    def readers(self, at: int) -> tuple[WordMatcher, ...]:
        return self.sequence.readers(at)

    def score(self, command: SimpleCommand) -> int:
        return self.sequence.read(command.words)[0]  # another program stops it at word 0 at once

    def closest(self, command: SimpleCommand) -> Closest:
        words = command.words
        progress: Progress = self.sequence.progress(words)
        at = max(progress.furthest, 0)
        expected = progress.expected()
        if progress.end_ok_at == at and at < len(words):
            expected.append("the end of the command")
        given = f"`{words[at].display}`" if at < len(words) else "nothing"
        why = "; ".join(progress.why()) or None
        return Closest(self.describe(), at + 1, " or ".join(expected) or "nothing more", given, why, score=at)


def compile_argv(items: Sequence[object], position: Position = "any") -> ArgvPattern | TypedPattern:
    """Today's all-strings form keeps its exact meaning (``ArgvPattern``); any mapping makes it typed."""
    if all(isinstance(item, str) for item in items):
        return ArgvPattern([str(item) for item in items], position)
    return TypedPattern(items, position)


CompiledPattern = ArgvPattern | RegexPattern | TypedPattern


def literal_prefix(pattern: CompiledPattern) -> str:
    """The words a pattern names literally at its start, shell-quoted, with a trailing space when more
    follow: what the command builder pre-fills (``tail -n ``). Regexes name none (nothing is safe to
    guess from them)."""
    words: list[str] = []
    more = True
    if isinstance(pattern, ArgvPattern):
        literal = [w.literal for w in pattern.words]
        head = list(itertools.takewhile(lambda w: w is not None, literal))
        words = [str(w) for w in head]
        more = len(head) < len(literal) or pattern.rest
    elif isinstance(pattern, TypedPattern):
        elements = pattern.sequence.elements
        for element in elements:
            unit = element.unit
            if element.optional or element.repeat or not isinstance(unit, GlobMatcher) or unit.literal is None:
                break
            words.append(unit.literal)
        more = len(words) < len(elements)
    if not words:
        return ""
    return " ".join(shlex.quote(w) for w in words) + (" " if more else "")


class PatternsByProgram:
    """A rule's patterns as seen from one place of a pipeline (the first command, or one after a `|`),
    looked up by the command's program, in file order.

    Each compiled pattern says which programs it can match (``programs``: its literal first word, or the
    name a regex plainly starts with; None for a glob or any other regex). A pattern naming another
    program can neither match nor refuse the command (its first word fails before any danger check) and
    scores 0, so it is never tried."""

    __slots__ = ("named_tries", "other_tries", "named_scored", "other_scored", "first_here", "_beats",
                 "_other_beat")

    def __init__(self, patterns: Sequence[CompiledPattern], index: int) -> None:
        names = {name for p in patterns for name in (p.programs or ())}
        picked = {name: self._pick(patterns, index, name) for name in names}
        # Two plain dicts rather than one of pairs: each lookup is on a request's hot path.
        self.named_tries = {name: tries for name, (tries, _) in picked.items()}
        self.named_scored = {name: scored for name, (_, scored) in picked.items()}
        self.other_tries, self.other_scored = self._pick(patterns, index, None)  # a program no pattern names
        self.first_here = next((p for p in patterns if position_allows(p.position, index)), None)
        # What `may_beat` needs per program name (None: the others), in one lookup: the name, the length
        # bounds, and per word position the matchers that could read it (looked up when first asked).
        self._beats: dict[str, _Beat] = {
            name: (name, _score_bounds(scored), [False] * _READ_MEMO_WORDS) for name, scored in self.named_scored.items()
        }
        self._other_beat: _Beat = (None, _score_bounds(self.other_scored), [False] * _READ_MEMO_WORDS)

    @staticmethod
    def _pick(patterns: Sequence[CompiledPattern], index: int, program: str | None) -> _Picked:
        same = [p for p in patterns if p.programs is None or (program is not None and program in p.programs)]
        here = [(p, position_allows(p.position, index)) for p in same]
        # A regex allowed here always scores 0, which never makes it the closest (a tie at 0 goes to
        # ``first_here``), so the closest-pattern search does not score it.
        return (tuple(p for p, allowed in here if allowed),
                tuple((p, allowed) for p, allowed in here if not (allowed and isinstance(p, RegexPattern))))

    def scored(self, words: tuple[Word, ...]) -> tuple[tuple[CompiledPattern, bool], ...]:
        """The patterns that may match the command of ``words`` or score above 0, each with whether its
        position allows it here, in file order."""
        return self.named_scored.get(words[0].value, self.other_scored) if words else self.other_scored

    def may_beat(self, words: tuple[Word, ...], best: int) -> bool:
        """Whether a pattern ``scored`` gives for the command of ``words`` could score above ``best``, *given
        that none of those allowed here matched it or refused it* (what a rule's check found when it reports
        the command's index). False lets the closest-pattern search skip the rule at the cost of a lookup
        and a matcher or two, where scoring it would run every pattern. Two tests, in one call (this runs
        for every refusing rule a denial searches):

        - the length bound of plain argv patterns (``_score_bounds``; None for typed ones);
        - a score counts the words read (a match reads them all), so scoring above ``best`` means reading
          word ``best`` (0-based): does a matcher that could stand there accept it (with its reader
          regex, one C call, where it has one)?"""
        name, bounds, readers_by_word = self._beats.get(words[0].value, self._other_beat) if words else self._other_beat
        n = len(words)
        if bounds is not None and bounds[n if n < len(bounds) else -1] <= best:
            return False
        if best >= n or best >= _READ_MEMO_WORDS:
            return True
        readers = readers_by_word[best]
        if isinstance(readers, bool):
            readers = readers_by_word[best] = self._readers_at(name, best)
        if readers is None:
            return True
        word = words[best]
        value = word.value
        for fullmatch, unit in readers:
            if fullmatch(value) is not None if fullmatch is not None else unit.accepts(word):
                return True
        return False

    def _readers_at(self, name: str | None, at: int) -> tuple[tuple[Callable[[str], object] | None, _Reader], ...] | None:
        """The matchers that could read word ``at``, each once, with their ``reader``'s ``fullmatch`` (a C
        call; None: call ``accepts``), or None when a pattern could read any word there."""
        found: dict[int, tuple[Callable[[str], object] | None, _Reader]] = {}
        for pattern, _ in self.named_scored[name] if name is not None else self.other_scored:
            readers = pattern.readers(at)
            if readers is None:
                return None
            for unit in readers:
                reader = unit.reader  # compiled when the pattern loaded (None: only Python can say)
                found[id(unit)] = (None if reader is None else reader.fullmatch, unit)
        return tuple(found.values())


# `may_beat` remembers the matchers for the first few words only (programs are the policy's names, so the
# memo is bounded); a best score further in is rare and is not used to skip a rule.
_READ_MEMO_WORDS = 8
_Picked = tuple[tuple[CompiledPattern, ...], tuple[tuple[CompiledPattern, bool], ...]]
_Reader = _GlobWord | WordMatcher
# A program name (None: any other), its length bounds, and per word position the matchers that could read
# it (``_readers_at``; False: not looked up yet; None: any word).
_Beat = tuple[str | None, tuple[int, ...] | None,
              list[tuple[tuple[Callable[[str], object] | None, _Reader], ...] | None | bool]]


def _score_bounds(scored: tuple[tuple[CompiledPattern, bool], ...]) -> tuple[int, ...] | None:
    """For each command length from 0 up to one past the longest pattern (longer commands share that last
    bound), at least the score of every pattern ``scored`` gives for the command, *given that none of those
    allowed here matched it or refused it*, when all ``scored`` are plain argv patterns allowed here; None
    otherwise (``PatternsByProgram.may_beat``).

    A glob word that did not match is the first difference at the latest, so a pattern of ``n`` fixed
    words that a command of ``given`` words fits (``given == n``, or more with a final ``**``) scores at
    most ``n - 1``; one it does not fit scores at most the shorter of the two."""
    if not all(here and isinstance(p, ArgvPattern) for p, here in scored):
        return None
    shapes = [(len(p.words), p.rest) for p, _ in scored if isinstance(p, ArgvPattern)]
    longest = max((n for n, _ in shapes), default=0)
    return tuple(
        max((given if given < n else n if given > n and not rest else n - 1 for n, rest in shapes), default=0)
        for given in range(longest + 2)
    )
