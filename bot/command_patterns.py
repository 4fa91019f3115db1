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

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

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


class PatternError(ValueError):
    """A pattern in the policy file is invalid (the caller adds the rule name)."""


# -- glob translation --------------------------------------------------------------------------------

_NOT_SLASH_OR_WILD = f"[^/{WILD_STAR}{WILD_QMARK}]"


def _glob_to_regex(glob: str) -> str:
    """Translate one argv glob into a regex over a word value (see the module docstring)."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        elif ch == "*":
            if glob.startswith("**", i):
                out.append(".*")
                i += 2
            else:
                out.append("[^/]*")
                i += 1
        elif ch == "?":
            out.append(_NOT_SLASH_OR_WILD)
            i += 1
        elif ch == "[":
            end = _class_end(glob, i)
            if end < 0:
                out.append(re.escape(ch))
                i += 1
                continue
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
            # A class never matches `/` nor a user's glob character.
            out.append(f"(?![/{WILD_STAR}{WILD_QMARK}])[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    j = start + 1
    if j < len(glob) and glob[j] == "!":
        j += 1
    if j < len(glob) and glob[j] == "]":
        j += 1
    end = glob.find("]", j)
    return end


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


def _danger(word: Word, index: int, program: str, *, literal: bool) -> Refusal | None:
    """Why ``word`` (at argv ``index`` of ``program``) may not be matched by a wildcard, if it may not."""
    if literal:
        return None
    value = word.display
    if _TRAVERSAL.search(word.value):
        return Refusal("traversal", f"`{value}`",
                       "`..` leaves the directory the rule allows; write the path without `..`")
    if index == 0 and program in DANGEROUS_PROGRAMS:
        return Refusal("dangerous", f"`{value}`",
                       f"`{program}` can run other commands or change files, so only a rule that names "
                       "it literally allows it")
    if index > 0:
        lowered = word.value.lower()
        if word.value in DANGEROUS_ARGS or lowered.startswith(DANGEROUS_ARG_PREFIXES):
            return Refusal("dangerous", f"`{value}`",
                           "this option runs other commands or changes files, so only a rule that names "
                           "it literally allows it")
        if program in AWK_PROGRAMS and _AWK_DANGER.search(word.value):
            return Refusal("dangerous", f"`{value}`",
                           "this awk program can run commands or write files (system, getline, | or >), "
                           "so only a rule that names it literally allows it")
    return None


def _program(words: Sequence[Word]) -> str:
    return posixpath.basename(words[0].value) if words else ""


# -- compiled patterns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GlobWord:
    regex: re.Pattern[str]
    literal: str | None  # the exact word when the glob has no wildcards
    option: bool  # the glob itself starts with `-`, so it may match options

    def matches(self, value: str) -> bool:
        if self.literal is not None:
            return value == self.literal
        if value.startswith("-") and not self.option:
            # Argument injection: `grep * FILE` is for a search term, not `-r` or `--file=…`.
            return False
        return self.regex.fullmatch(value) is not None


class ArgvPattern:
    """``argv: [...]`` compiled."""

    def __init__(self, argv: Sequence[str]) -> None:
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
        self.rest = argv[-1] == "**"
        fixed = argv[:-1] if self.rest else argv
        self.words = tuple(
            _GlobWord(re.compile(_glob_to_regex(w), re.DOTALL), _unescape(w) if _is_literal(w) else None,
                      w.startswith("-"))
            for w in fixed
        )

    def describe(self) -> str:
        return "`" + " ".join(self.source) + "`"

    def match(self, command: SimpleCommand) -> PatternOutcome:
        words = command.words
        n = len(self.words)
        if len(words) < n or (len(words) > n and not self.rest):
            return NO_MATCH
        for glob, word in zip(self.words, words, strict=False):
            if not glob.matches(word.value):
                return NO_MATCH
        for word in words[: n - 1]:
            if word.has_glob:
                # The shell expands it into *several* words, which shift into the positions after it:
                # `grep s* /var/log/app/x.log` becomes `grep secret.yml settings.py /var/log/app/x.log`,
                # reading files of the working directory that `grep * FILE` never meant to allow.
                return PatternOutcome(False, Refusal(
                    "glob", f"`{word.display}`",
                    "an unquoted glob before the last argument can expand to several file names that take "
                    "the place of the arguments after it; quote it, or name one file"))
        program = _program(words)
        for index, word in enumerate(words):
            literal = index < n and self.words[index].literal is not None
            refusal = _danger(word, index, program, literal=literal)
            if refusal is not None:
                return PatternOutcome(False, refusal)
        return MATCH


class RegexPattern:
    """``regex: '...'`` compiled; full match against the normalized simple command."""

    def __init__(self, source: str) -> None:
        try:
            self.regex = re.compile(source)
        except re.error as exc:
            raise PatternError(f"invalid regex {source!r}: {exc}") from None
        self.source = source

    def describe(self) -> str:
        return f"regex `{self.source}`"

    def match(self, command: SimpleCommand) -> PatternOutcome:
        if command.has_glob:
            return NO_MATCH
        if self.regex.fullmatch(command.normalized) is None:
            return NO_MATCH
        program = _program(command.words)
        for index, word in enumerate(command.words):
            refusal = _danger(word, index, program, literal=False) if word.value not in self.source else None
            if refusal is None and _TRAVERSAL.search(word.value):
                refusal = _danger(word, index, program, literal=False)
            if refusal is not None:
                return PatternOutcome(False, refusal)
        return MATCH


def _unescape(glob: str) -> str:
    return re.sub(r"\\(.)", r"\1", glob)




CompiledPattern = ArgvPattern | RegexPattern
