"""Tokenize a command the way a POSIX shell would, refusing everything but words, quotes and pipes.

The runner wraps the command in ``sh -c`` (to learn the exit status), so whatever the policy lets
through is interpreted by a real shell. The policy can only reason about a command it understands
exactly, so this tokenizer accepts a deliberately small language:

* words separated by spaces or tabs;
* ``'single quotes'``, ``"double quotes"`` (without ``$`` or backticks inside) and ``\\x`` escapes;
* unquoted ``*`` and ``?`` globs, marked in the word (see ``WILD_STAR``) so patterns can tell a glob
  the shell will expand from a quoted literal;
* ``|`` between simple commands.

Anything else that a shell would interpret (``;``, ``&&``, ``||``, ``&``, redirections, ``$``
expansions, command and process substitution, subshells, braces, ``~``, comments, newlines, leading
``NAME=value`` assignments, reserved words, ``[`` globs, ``!``) is refused with a ``Refusal`` that
names the part and says why. So are characters that could make what an approver reads differ from
what runs: control and invisible formatting characters, and Unicode lookalikes of shell syntax
(fullwidth ``；``, curly quotes, odd dashes and spaces).

Pure: no I/O; raises only ``ShellSyntaxRefused`` (a ``PolicyDenied``).
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from bot.errors import PolicyDenied
from bot.fast_init import fast_init

if TYPE_CHECKING:
    from bot.command_patterns import Closest

# Slack sends at most 4,000 characters of slash-command text; anything longer did not come from Slack.
MAX_COMMAND_CHARS = 4000

# Unquoted glob characters are kept in a word's value as these private-use characters, so a
# pattern's literal `*` (which only matches a quoted `*`) differs from a glob the shell expands.
# Private-use characters are refused in input, so they cannot be forged.
WILD_STAR = "\ue000"
WILD_QMARK = "\ue001"
WILD_CHARS = frozenset({WILD_STAR, WILD_QMARK})

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")

# Reserved words only mean something unquoted in command position (bash adds `[[`, `function`, ...).
RESERVED_WORDS = frozenset({
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in",
    "function", "select", "time", "coproc", "{", "}", "!", "[[", "]]",
})

# Lookalikes that NFKC does not fold to ASCII: curly quotes, primes, modifier letters, dashes.
_EXTRA_LOOKALIKES = frozenset(
    "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2032\u2033\u2035\u2036\u02b9\u02ba\u02bb\u02bc"
    "\u02c8\u02ee\u00b4\u0060\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe63\uff0d\u2044\u2215"
    "\u29f8\u2216\u29f5\u037e\u01c0\u2223\u00a6\u02d0\u0589\u2236"
)


@fast_init  # one per refusal (bot/fast_init.py)
@dataclass(frozen=True)
class Refusal:
    """Why a command was refused: a stable ``category`` (for tests, audit, metrics), the ``part`` of the
    command concerned (as typed) and a sentence saying ``why``."""

    category: str
    part: str
    why: str
    closest: Closest | None = None  # for "matches no pattern": which came closest, and where it differs
    command_index: int | None = None  # for "matches no pattern": which command of the pipeline

    def sentence(self) -> str:
        return f"{self.part}: {self.why}"


class ShellSyntaxRefused(PolicyDenied):
    """The command uses shell syntax (or characters) that the policy does not accept."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.sentence())
        self.refusal = refusal


class _WordFields(NamedTuple):
    value: str
    source: str  # as typed, quotes included
    has_glob: bool


class Word(_WordFields):
    """One shell word after quote removal. ``value`` holds unquoted globs as ``WILD_*`` characters.

    A named tuple (immutable) rather than a frozen dataclass: one is made per word of every request, and
    a frozen dataclass costs about twice as much to build. ``has_glob`` is set here, once: every pattern
    of every rule reads it."""

    __slots__ = ()

    def __new__(cls, value: str, source: str) -> Word:
        return tuple.__new__(cls, (value, source, WILD_STAR in value or WILD_QMARK in value))

    @classmethod
    def plain_words(cls, values: Sequence[str]) -> tuple[Word, ...]:
        """Words of plain text (``_PLAIN_TEXT``): each as typed, and none can hold a glob. Made in C (no
        Python call per word): most requests are only such words."""
        return tuple(map(tuple.__new__, repeat(cls), zip(values, values, repeat(False))))

    @property
    def display(self) -> str:
        """The value with globs shown as ``*``/``?`` (for messages)."""
        return self.value.replace(WILD_STAR, "*").replace(WILD_QMARK, "?")


class _SimpleCommandFields(NamedTuple):
    words: tuple[Word, ...]
    source: str  # this command's text as typed (between pipes), trimmed
    # The canonical text regex patterns see: words shell-quoted, one space apart (made once, however many
    # rules look at it).
    normalized: str
    has_glob: bool


class SimpleCommand(_SimpleCommandFields):
    """One command of a pipeline (an immutable named tuple, built once per request like ``Word``)."""

    __slots__ = ()

    def __new__(cls, words: tuple[Word, ...], source: str, normalized: str = "") -> SimpleCommand:
        """``normalized``: a caller that already knows it (plain words) passes it."""
        if not normalized:
            normalized = " ".join(shlex.quote(w.value) for w in words)
        return tuple.__new__(cls, (words, source, normalized, any(w.has_glob for w in words)))

    @classmethod
    def plain(cls, words: tuple[Word, ...], source: str, normalized: str) -> SimpleCommand:
        """A command of plain words (``Word.plain_words``): none holds a glob."""
        return tuple.__new__(cls, (words, source, normalized, False))

    @property
    def argv(self) -> tuple[str, ...]:
        return tuple(w.value for w in self.words)


def clip(text: str, limit: int, *, keep_end: bool = False) -> str:
    """At most ``limit`` characters of ``text``, cut only at a space: refusals end up in the audit log and
    channel, and half a token (``ghp_AbC…``) is no longer recognisable to the redactor but still a leak."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if keep_end:
        tail = text[len(text) - limit + 1 :]
        cut = tail.find(" ") if text[len(text) - limit] != " " else 0
        return "…" + (tail[cut:].lstrip() if cut >= 0 else "")
    head = text[: limit - 1]
    cut = head.rfind(" ") if text[limit - 1] != " " else len(head)
    return (head[:cut].rstrip() if cut >= 0 else "") + "…"


def _quote_part(text: str, limit: int = 60, *, keep_end: bool = False) -> str:
    text = clip(text, limit, keep_end=keep_end)
    return f"`{text}`" if text else "(nothing)"


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


_PRINTABLE_ASCII = re.compile(r"[\t -~]*")


def check_characters(text: str, *, allow_newlines: bool = False) -> None:
    """Refuse text an approver could misread or a shell could misparse, before any tokenizing."""
    if not text.strip():
        raise ShellSyntaxRefused(Refusal("empty", "(the command)", "is empty; type the command to run"))
    if len(text) > MAX_COMMAND_CHARS:
        raise ShellSyntaxRefused(Refusal(
            "too-long", f"the command ({len(text):,} characters)",
            f"is longer than {MAX_COMMAND_CHARS:,} characters, which Slack never sends",
        ))
    if _PRINTABLE_ASCII.fullmatch(text):
        return  # what the loop below accepts without a look at Unicode (most commands)
    for i, ch in enumerate(text):
        if ch == "\t" or (" " <= ch <= "~"):
            continue
        if ch in "\n\r":
            if ch == "\n" and allow_newlines:
                continue
            raise ShellSyntaxRefused(Refusal(
                "newline", f"a line break after {_quote_part(text[:i], 40, keep_end=True)}",
                "a new line starts another command and is not allowed; send one line",
            ))
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"):
            raise ShellSyntaxRefused(Refusal(
                "control-char", f"character {_char_name(ch)} at position {i + 1}",
                "is a control or invisible character that can hide what really runs; retype the command",
            ))
        # A compatibility form of ASCII (fullwidth `；` or `ｓｈ`, `²`, math letters) reads as ASCII to
        # an approver but is a different character to the shell.
        if category == "Zs" or ch in _EXTRA_LOOKALIKES or any(
            c < "\x80" for c in unicodedata.normalize("NFKC", ch)
        ):
            raise ShellSyntaxRefused(Refusal(
                "lookalike", f"character {_char_name(ch)} at position {i + 1}",
                "looks like an ASCII character but is not (Slack may have made it a smart quote or dash); "
                "retype it as plain ASCII",
            ))


# Characters `_Tokenizer.run` hands to `add` one by one: all but blanks, quotes, escapes and specials.
_ORDINARY_RUN = re.compile(r"[^ \t|'\"\\;&<>()`$*?{}~!#\[]+")


class _Tokenizer:
    """One pass over the text; ``run`` returns the pipeline or raises ``ShellSyntaxRefused``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.commands: list[SimpleCommand] = []
        self.words: list[Word] = []
        # The current simple command spans text[command_start:command_end] (first word to last word).
        self.command_start = 0
        self.command_end = 0
        # Current word being built.
        self.value: list[str] = []
        self.word_start: int | None = None
        self.word_quoted = False

    def refuse(self, category: str, start: int, end: int, why: str, *, chain: bool = False) -> NoReturn:
        """Raise a refusal naming the offending part as typed, with the text before it for context."""
        text = self.text
        before = text[:start].strip()
        if chain and text[end:].strip():
            # Name the command that would have run: "`rm -rf /` (after `;`)".
            part = f"{_quote_part(text[end:])} (after `{text[start:end]}`)"
        else:
            stop = end
            while stop < len(text) and text[stop] not in " \t":
                stop += 1
            part = _quote_part(text[start:stop])
            if before:
                part += f" (after {_quote_part(before, 40, keep_end=True)})"
        raise ShellSyntaxRefused(Refusal(category, part, why))

    def run(self) -> tuple[SimpleCommand, ...]:
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch in " \t":
                self.end_word()
                self.i += 1
            elif ch == "|":
                self.pipe()
            elif ch == "'":
                self.single_quoted()
            elif ch == '"':
                self.double_quoted()
            elif ch == "\\":
                self.backslash()
            elif ch in ";&<>()`$" or ch in "{}~!#[" or ch in "*?":
                self.special(ch)
            else:
                # A run of ordinary characters at once: the same as `add` for each (they are literal).
                run = _ORDINARY_RUN.match(text, self.i)
                assert run is not None  # `ch` itself is one
                if self.word_start is None:
                    self.word_start = self.i
                self.value.append(run.group())
                self.i = run.end()
        self.end_word()
        self.end_command(last=True)
        return tuple(self.commands)

    # -- words ---------------------------------------------------------------------------------------

    def add(self, ch: str, *, quoted: bool = False) -> None:
        if self.word_start is None:
            self.word_start = self.i
        self.value.append(ch)
        self.word_quoted = self.word_quoted or quoted

    def end_word(self) -> None:
        if self.word_start is None:
            return
        source = self.text[self.word_start : self.i]
        word = Word("".join(self.value), source)
        if not self.words:
            self.check_command_position(word, quoted=self.word_quoted)
        if word.has_glob:
            self.check_glob(word)
        if not self.words:
            self.command_start = self.word_start
        self.words.append(word)
        self.command_end = self.i
        self.value = []
        self.word_start = None
        self.word_quoted = False

    def check_command_position(self, word: Word, *, quoted: bool) -> None:
        start = self.word_start or 0
        if not quoted and word.value in RESERVED_WORDS:
            self.refuse("keyword", start, self.i,
                        f"`{word.value}` is a shell keyword (loops, conditions, groups) and is not allowed")
        if word.has_glob:
            # `s?` or `py*` in command position: the shell picks the program (and its first arguments)
            # from whatever file names match in the working directory, e.g. `sh` or `python3`.
            self.refuse("glob", start, self.i,
                        "a glob in the program's name makes file names decide what runs; type the program "
                        "name out")
        name, eq, _ = word.source.partition("=")
        if eq and name and name[0] in _NAME_START and all(c in _NAME_CHARS for c in name):
            self.refuse("assignment", start, self.i,
                        f"`{name}=` before a command sets an environment variable (e.g. IFS, PATH, "
                        "LD_PRELOAD) and is not allowed")

    def check_glob(self, word: Word) -> None:
        start = self.word_start or 0
        if word.value[0] in WILD_CHARS:
            self.refuse("glob", start, self.i,
                        "a word starting with a glob can expand to file names that look like options "
                        "(`-rf`); start it with a path such as `./`")
        for segment in word.value.split("/"):
            if segment.startswith(".") and any(c in WILD_CHARS for c in segment):
                self.refuse("traversal", start, self.i,
                            "a glob after `.` can match `..` and leave the allowed directory")

    # -- quoting -------------------------------------------------------------------------------------

    def single_quoted(self) -> None:
        end = self.text.find("'", self.i + 1)
        if end < 0:
            self.refuse("quote", self.i, self.i + 1, "this single quote is never closed; close it")
        if self.word_start is None:
            self.word_start = self.i
        self.value.extend(self.text[self.i + 1 : end])
        self.word_quoted = True
        self.i = end + 1

    def double_quoted(self) -> None:
        text = self.text
        open_at = self.i
        if self.word_start is None:
            self.word_start = self.i
        self.word_quoted = True
        self.i += 1
        while self.i < len(text):
            ch = text[self.i]
            if ch == '"':
                self.i += 1
                return
            if ch == "\\" and self.i + 1 < len(text) and text[self.i + 1] in '$`"\\':
                self.value.append(text[self.i + 1])
                self.i += 2
                continue
            if ch == "$":
                self.dollar(quoted=True)
            if ch == "`":
                self.refuse("substitution", self.i, self.i + 1,
                            "backticks run another command and its output becomes part of this one")
            self.value.append(ch)
            self.i += 1
        self.refuse("quote", open_at, open_at + 1, "this double quote is never closed; close it")

    def backslash(self) -> None:
        if self.i + 1 >= len(self.text):
            self.refuse("quote", self.i, self.i + 1,
                        "a backslash at the end escapes nothing (and would join the next line)")
        if self.word_start is None:
            self.word_start = self.i
        self.value.append(self.text[self.i + 1])
        self.word_quoted = True
        self.i += 2

    # -- operators -----------------------------------------------------------------------------------

    def pipe(self) -> None:
        text, i = self.text, self.i
        if text.startswith("||", i):
            self.refuse("chain", i, i + 2, "`||` runs another command when the first fails and is not allowed",
                        chain=True)
        if text.startswith("|&", i):
            self.refuse("redirection", i, i + 2,
                        "`|&` also pipes standard error (like `2>&1 |`) and is not allowed")
        self.end_word()
        self.end_command()
        self.i += 1

    def end_command(self, *, last: bool = False) -> None:
        if not self.words:
            if last and not self.commands:
                raise ShellSyntaxRefused(Refusal("empty", "(the command)", "is empty; type the command to run"))
            where = "at the end" if last else "at the start" if not self.commands else "between two pipes"
            raise ShellSyntaxRefused(Refusal("empty", f"`|` {where}",
                                             "a pipe needs a command on each side"))
        source = self.text[self.command_start : self.command_end]
        self.commands.append(SimpleCommand(tuple(self.words), source))
        self.words = []

    def dollar(self, *, quoted: bool = False) -> NoReturn:
        text, i = self.text, self.i
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if text.startswith("$((", i):
            self.refuse("expansion", i, i + 3, "`$((…))` is shell arithmetic and is not allowed")
        if nxt == "(":
            self.refuse("substitution", i, i + 2,
                        "`$(…)` runs another command and its output becomes part of this one")
        if nxt == "{":
            self.refuse("expansion", i, i + 2,
                        "`${…}` expands a variable (e.g. `${IFS}` becomes a space) and is not allowed; "
                        "put literal `$` in single quotes")
        if nxt == "'" and not quoted:
            self.refuse("expansion", i, i + 2, "`$'…'` is bash escape quoting and is not allowed")
        if nxt and (nxt in _NAME_CHARS or nxt in "@*#?-$!"):
            end = i + 2
            while nxt in _NAME_START and end < len(text) and text[end] in _NAME_CHARS:
                end += 1
            self.refuse("expansion", i, end,
                        f"`{text[i:end]}` expands a shell variable (its value is not what you typed) and is "
                        "not allowed; put a literal `$` in single quotes")
        self.refuse("expansion", i, i + 1,
                    "`$` starts a shell expansion; put a literal `$` in single quotes")

    def special(self, ch: str) -> None:
        text, i = self.text, self.i
        if ch == "*" or ch == "?":
            self.add(WILD_STAR if ch == "*" else WILD_QMARK)
            self.i += 1
            return
        if ch == "#":
            if self.word_start is None:
                self.refuse("comment", i, len(text),
                            "`#` starts a comment that hides the rest of the line from the shell")
            self.add(ch)
            self.i += 1
            return
        if ch == ";":
            self.refuse("chain", i, i + 1, "`;` chains commands and is not allowed; send one command", chain=True)
        if ch == "&":
            if text.startswith("&&", i):
                self.refuse("chain", i, i + 2, "`&&` chains commands and is not allowed; send one command",
                            chain=True)
            if text.startswith("&>", i):
                self.refuse("redirection", i, i + 2, "`&>` writes output to a file and is not allowed")
            self.refuse("background", i, i + 1,
                        "`&` runs a command in the background, out of the bot's control, and is not allowed",
                        chain=True)
        if ch in "<>":
            self.redirection(ch)
        if ch in "()":
            self.refuse("subshell", i, i + 1,
                        "parentheses start a subshell (or a function) and are not allowed")
        if ch == "`":
            self.refuse("substitution", i, i + 1,
                        "backticks run another command and its output becomes part of this one")
        if ch == "$":
            self.dollar()
        if ch in "{}":
            self.refuse("brace", i, i + 1,
                        "braces expand to several words (`{a,b}`, `{1..9}`) or group commands and are not "
                        "allowed; quote them")
        if ch == "~":
            self.refuse("expansion", i, i + 1,
                        "`~` expands to a home directory and is not allowed; write the path out")
        if ch == "!":
            self.refuse("keyword", i, i + 1,
                        "`!` negates a command or expands history and is not allowed; quote it")
        if ch == "[":
            self.refuse("glob", i, i + 1,
                        "`[…]` glob brackets are not allowed; use `*`/`?` or quote the `[`")
        raise AssertionError(f"unhandled special character {ch!r}")  # pragma: no cover

    def redirection(self, ch: str) -> NoReturn:
        text, i = self.text, self.i
        forms = (
            ("<<<", "heredoc", "`<<<` here-strings feed text to a command and are not allowed"),
            ("<<", "heredoc", "`<<` here-documents are not allowed"),
            ("<(", "substitution", "`<(…)` process substitution runs another command and is not allowed"),
            (">(", "substitution", "`>(…)` process substitution runs another command and is not allowed"),
            (">>", "redirection", "`>>` appends output to a file and is not allowed"),
            (">|", "redirection", "`>|` overwrites a file and is not allowed"),
            (">&", "redirection", "`>&` redirects a file descriptor and is not allowed"),
            ("<&", "redirection", "`<&` redirects a file descriptor and is not allowed"),
            ("<>", "redirection", "`<>` opens a file for reading and writing and is not allowed"),
            (">", "redirection", "`>` writes output to a file and is not allowed"),
            ("<", "redirection", "`<` reads input from a file and is not allowed; pass the file as an argument"),
        )
        for op, category, why in forms:
            if text.startswith(op, i):
                start = i
                # Include a file-descriptor number (`2>&1`) in the part shown.
                if self.word_start is not None and self.text[self.word_start : i].isdigit():
                    start = self.word_start
                self.refuse(category, start, i + len(op), why)
        raise AssertionError("unreachable")  # pragma: no cover


def join_command_words(words: Sequence[str]) -> str:
    """The command text for words a local shell has already split (`exec` and `policy check` share it, so
    both check and run the same text a Slack user would type). One word is the text itself (`'ps aux |
    grep x'` keeps its pipe); several are shell-quoted, so `grep 'upstream timed out' file` stays three
    words instead of becoming a search for `upstream`."""
    return words[0] if len(words) == 1 else shlex.join(words)


def parse_pipeline(text: str) -> tuple[SimpleCommand, ...]:
    """Split ``text`` into the simple commands of one pipeline, or raise ``ShellSyntaxRefused``."""
    plain = _plain_pipeline(text)
    if plain is not None:
        return plain
    check_characters(text)
    return _Tokenizer(text).run()


# Characters that need no tokenizing: no quote, escape, glob or operator but `|`, and every word made of
# them is one `shlex.quote` leaves as it is. Most commands people type are only these.
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_@%+=:,./|\t -]+")


def _plain_pipeline(text: str) -> tuple[SimpleCommand, ...] | None:
    """The pipeline of text made only of plain characters, split without the tokenizer; None when the
    text needs it (anything else, an empty command, or a first word it has to refuse or look at:
    reserved words and `NAME=` assignments). Gives exactly what ``_Tokenizer`` gives for such text
    (tests/policy/test_plain_pipeline.py)."""
    if len(text) > MAX_COMMAND_CHARS or _PLAIN_TEXT.fullmatch(text) is None:
        return None
    commands = []
    for part in text.split("|"):
        values = part.split()
        if not values or values[0] in RESERVED_WORDS or "=" in values[0]:
            return None
        commands.append(SimpleCommand.plain(Word.plain_words(values), part.strip(" \t"), " ".join(values)))
    return tuple(commands)
