"""clean_terminal_output: what a person would have read on the terminal, in linear time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.output.clean import clean_terminal_output, escape_sequence_end

CASES = [
    (b"plain\n", "plain\n"),
    (b"a\r\nb\r\n", "a\nb\n"),
    (b"a\r\r\nb", "a\nb"),  # some programs emit \r before onlcr adds its own
    (b"\x1b[1;31mred\x1b[0m", "red"),
    (b"\x1b[?25l\x1b[2K\x1b[1Gdone", "done"),  # private-mode CSI, erase line, column
    (b"\x1b]0;user@host: ~\x07prompt", "prompt"),  # OSC window title ended by BEL
    (b"\x1b]8;;https://x.example/\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST-terminated
    (b"\x1bP1$r0m\x1b\\after", "after"),  # DCS
    (b"\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\x", "x"),  # APC, PM, SOS
    (b"\x1bOA\x1bNBx", "x"),  # SS3 / SS2 with their one character
    (b"\x1b(B\x1b=\x1b>\x1b7\x1b8\x1bMx", "x"),  # charset designation, keypad modes, save/restore
    (b"progress 10%\rprogress 50%\rprogress 100%\n", "progress 100%\n"),
    (b"working...\r", "working..."),  # a trailing \r overwrote nothing yet
    (b"abc\rX\n", "X\n"),  # keep the last segment of the line
    (b"spin |\x08/\x08-\x08\\\x08done\n", "spin done\n"),
    (b"ab\x08\x08\x08\x08c\nd", "c\nd"),  # backspaces stop at the start of the line
    (b"\x08\x08x", "x"),
    (b"tab\there\x00\x07\x0b\x0c\x7f!", "tab\there!"),
    ("c1:\u0085\u009b!".encode(), "c1:!"),
    (b"bad \xff\xfe utf8 \xe2\x82", "bad \ufffd\ufffd utf8 \ufffd"),
    (b"caf\xc3\xa9 \xe2\x82\xac", "café €"),
    # incomplete sequences at the end of a fragment (the head side of a cut) are dropped
    (b"text\x1b[38;5", "text"),
    (b"text\x1b]0;title without end", "text"),
    (b"text\x1b", "text"),
    # an unterminated OSC costs at most its line
    (b"\x1b]0;never ends\nnext line\n", "\nnext line\n"),
    # a CSI aborted by a control character keeps the character's effect
    (b"a\x1b[31\nb", "a\nb"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_cases(raw: bytes, expected: str) -> None:
    assert clean_terminal_output(raw) == expected


@pytest.mark.parametrize(
    ("buf", "start", "end"),
    [
        (b"\x1b[31mX", 0, 5),
        (b"\x1b[31", 0, None),
        (b"\x1b", 0, None),
        (b"\x1b]0;t\x07", 0, 6),
        (b"\x1b]0;t\x1b\\x", 0, 7),
        (b"\x1b]0;t", 0, None),
        (b"\x1b]0;t\nx", 0, 5),  # aborted at the newline
        (b"x\x1b(B", 1, 4),
        (b"\x1bOA", 0, 3),
        (b"\x1b[31\nx", 0, 4),
    ],
)
def test_escape_sequence_end(buf: bytes, start: int, end: int | None) -> None:
    assert escape_sequence_end(buf, start) == end


_SGR = st.sampled_from([b"\x1b[0m", b"\x1b[1;32m", b"\x1b[38;2;1;2;3m", b"\x1b]8;;http://h/\x1b\\", b"\x1b(B"])
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)


@settings(deadline=None)
@given(st.lists(st.tuples(_SGR, _TEXT), max_size=30))
def test_styling_is_removed_and_text_kept(parts: list[tuple[bytes, str]]) -> None:
    raw = b"".join(seq + text.encode() for seq, text in parts)
    assert clean_terminal_output(raw) == "".join(text for _, text in parts)


@settings(deadline=None)
@given(st.binary(max_size=2000))
def test_output_has_no_controls_and_cleaning_is_idempotent(raw: bytes) -> None:
    text = clean_terminal_output(raw)
    assert not any((ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F for c in text)
    assert clean_terminal_output(text.encode()) == text


# Inputs that make a backtracking regex (or a per-character rescan) quadratic: at 1-4 MB a
# quadratic cleaner would run for hours, so the per-test timeout catches it without timing anything.
ADVERSARIAL = [
    b"\x1b]" + b"a" * 2_000_000,  # unterminated OSC
    b"\x1b[" + b"1;" * 1_000_000,  # endless CSI parameters
    b"\x1b" * 2_000_000,
    b"x" * 2_000_000 + b"\r",  # one long line with a trailing CR
    (b"y" * 1000 + b"\r") * 2000 + b"z",
    b"a" * 1_000_000 + b"\x08" * 1_000_000,
    (b"a\x08" * 1_000_000),
    b"\r" * 2_000_000 + b"\n",
    b"\x1bP" + b"\x1b" * 1_000_000,
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("raw", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_inputs_finish(raw: bytes) -> None:
    text = clean_terminal_output(raw)
    assert "\x1b" not in text and "\r" not in text and "\x08" not in text
