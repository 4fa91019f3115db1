"""What a running command shows in its live message (`bot.output.live_tail.LiveTail`): pure."""

from __future__ import annotations

from bot.output.live_tail import LiveTail


def test_counts_bytes_and_lines_and_shows_the_last_complete_lines() -> None:
    tail = LiveTail()
    for n in range(1, 11):
        tail.write(f"line {n}\r\n".encode())
    tail.write(b"half a li")
    assert tail.total_bytes == sum(len(f"line {n}\r\n") for n in range(1, 11)) + 9
    assert tail.lines == 10
    assert tail.text(3) == "line 8\nline 9\nline 10"  # cleaned (no CR); the unfinished line is not shown


def test_escape_sequences_are_cleaned() -> None:
    tail = LiveTail()
    tail.write(b"\x1b[31mred\x1b[0m text\n")
    assert tail.text() == "red text"


def test_nothing_is_shown_before_the_first_newline() -> None:
    tail = LiveTail()
    tail.write(b"ghp_partialTokenStillBeingWritten")
    assert tail.text() == "" and tail.total_bytes == 33 and tail.lines == 0


def test_a_line_whose_start_fell_out_of_the_window_is_dropped() -> None:
    tail = LiveTail(keep_bytes=256)
    tail.write(b"A" * 1000 + b"\n" + b"short line\n")
    assert tail.text() == "short line"
    assert tail.total_bytes == 1012 and tail.lines == 2
