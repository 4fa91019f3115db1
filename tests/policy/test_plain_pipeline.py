"""The plain-text fast path of ``parse_pipeline`` gives exactly what the tokenizer gives, or steps aside.

``_plain_pipeline`` splits text made only of letters, digits, ``_@%+=:,./-``, blanks and ``|`` without
the tokenizer. Whatever it returns must equal the tokenizer's pipeline (words, sources, the normalized
text regex patterns see, globs); for anything it returns None, and the tokenizer decides (refusals
included).
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.shell_syntax import (
    ShellSyntaxRefused,
    SimpleCommand,
    _plain_pipeline,
    _Tokenizer,
    check_characters,
    parse_pipeline,
)

PLAIN = "abcxyzABZ0129_@%+=:,./-"
# Plain characters, blanks, pipes, and a few that are never plain (so both paths get exercised).
ALPHABET = PLAIN + "  \t|" + "'\"\\*?;&$#!~{}()<>[]\n"


def _tokenized(text: str) -> tuple[SimpleCommand, ...] | str:
    try:
        check_characters(text)
        return _Tokenizer(text).run()
    except ShellSyntaxRefused as exc:
        return exc.refusal.category


def _same(a: tuple[SimpleCommand, ...], b: tuple[SimpleCommand, ...]) -> None:
    assert a == b  # words (value and source) and each command's source
    assert [c.normalized for c in a] == [c.normalized for c in b]
    assert [c.has_glob for c in a] == [c.has_glob for c in b]
    assert [[w.has_glob for w in c.words] for c in a] == [[w.has_glob for w in c.words] for c in b]


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(alphabet=ALPHABET, max_size=40), st.text(alphabet=PLAIN + "   \t|", max_size=40)))
@example("tail -n 200 /var/log/app/error.log")
@example("cat /var/log/a.log | grep -c 500")
@example(" \tls  -la\t/tmp \t")
@example("cat x || rm -rf /")
@example("| cat x")
@example("cat x |")
@example("if true")
@example("time ls")
@example("IFS=, ls")
@example("ls a=b")
@example("ls | FOO=1 cat")
@example("grep -c user@host:8080/a,b+c%d x")
def test_plain_path_is_the_tokenizer_or_steps_aside(text: str) -> None:
    plain = _plain_pipeline(text)
    expected = _tokenized(text)
    if plain is None:
        return
    assert not isinstance(expected, str), f"plain path accepted text the tokenizer refuses ({expected})"
    _same(plain, expected)


@pytest.mark.parametrize(("text", "category"), [
    ("cat x || rm -rf /", "chain"), ("| cat x", "empty"), ("cat x |", "empty"), ("cat x | | wc", "empty"),
    ("if true", "keyword"), ("time ls", "keyword"), ("IFS=, ls", "assignment"), ("   ", "empty"),
    ("cat /x; rm -rf /", "chain"),
])
def test_what_the_plain_path_leaves_alone_is_still_refused(text: str, category: str) -> None:
    assert _plain_pipeline(text) is None
    with pytest.raises(ShellSyntaxRefused) as info:
        parse_pipeline(text)
    assert info.value.refusal.category == category


def test_plain_commands_take_the_plain_path() -> None:
    # Not only "None is always safe": the common shapes do use it.
    for text in ("tail -n 200 /var/log/app/error.log", "cat /var/log/a.log | grep -c 500", "ps aux"):
        plain = _plain_pipeline(text)
        assert plain is not None
        _same(plain, parse_pipeline(text))
        assert plain == _Tokenizer(text).run()
