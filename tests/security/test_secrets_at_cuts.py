"""A secret right at a cut never shows without its key: message head and tail, file spool and tail, and
the cut inside a long line, for outputs of 1 KB, 1 MB and 20 MB with the production limits.

Each run places one secret shape exactly across each cut point of its output (the cut falls inside the
key, a few characters before the value, just before it, inside it, ...) in one of three layouts: short
lines (the capture moves its cuts to line ends), a long line around each cut (it cannot), or the whole
output as one line (a line longer than every budget). Then it looks at everything the production path
shows: the message view (``views``), the Slack message (``render``) and the full-output file. No piece of
the value may appear: redacted or hidden are the only outcomes. (On the previous path, handlers/replies.py
before the seam, 32 of these runs leaked the value.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.output.capture import BoundedCapture, CapturedOutput, CaptureLimits
from bot.output.redact import Redactor
from bot.output.render import SECTION_LIMIT, RunView, render_result, result_cut
from bot.output.views import full_output_text, task_result_view
from bot.runner import ExecResult
from bot.targets import Target

VALUE = "Qz7Kp2Wm9Xr4Tn6Lb3Vh8Jd5"  # mixed case and digits: no filler ever contains a piece of it
# (key + separator, closing text): the shapes the issue names, with keys the redactor knows.
SHAPES: tuple[tuple[str, str], ...] = (
    ("password = ", ""),
    ("secret: ", ""),
    ('"token": "', '"'),
    ("Authorization: Bearer ", ""),
    ("x-api-key: ", ""),
)
KB, MB = 1024, 1024 * 1024
SIZES = {"1KB": KB, "1MB": MB, "20MB": 20 * MB}
LIMITS = CaptureLimits()  # production sizes: 64 KiB head, 448 KiB tail, 8 MiB file
RENDER_BUDGET = SECTION_LIMIT - 8  # a code block's text within a section (fences and their newlines)
PAD = 12 * KB  # no newline this close to a cut: the capture cannot move the cut to a line end
REDACTOR = Redactor()
TARGET = Target("prod", "prod", "web", "arn:aws:ecs:us-east-1:1:task/prod/abc123def456", "abc123def456",
                "app", "rt-1", True)
RUN = RunView("web", "prod", "cat app.log", "U0ALICE")


def cut_points(size: int) -> dict[str, int]:
    """Byte offsets where this output is cut: by the capture (message, file) and by render (sections)."""
    points = {"render head": RENDER_BUDGET - 1}
    if size > LIMITS.head_bytes + LIMITS.tail_bytes:
        points |= {"message head": LIMITS.head_bytes, "message/file tail": size - LIMITS.tail_bytes}
    if size > LIMITS.file_bytes:
        points["file spool"] = LIMITS.file_bytes - LIMITS.tail_bytes
    points["render tail"] = size - RENDER_BUDGET
    inside = {name: at for name, at in points.items() if 100 < at < size - 200}
    return inside or {"nowhere (nothing is cut)": size // 2}


def offsets_in(shape: tuple[str, str]) -> dict[str, int]:
    """Where, inside ``key + separator + value``, the cut falls."""
    prefix = shape[0]
    return {"before the key": 0, "inside the key": 3, "a few characters before the value": len(prefix) - 3,
            "just before the value": len(prefix), "inside the value": len(prefix) + 5}


# -- building an output without holding it: filler of each layout, secrets at given offsets --------------

_LINE = b"2026-11-26T10:01:02Z GET /index.html 200 rt=0.012 ok\n"  # 53 bytes
_WORDS = b"zzzz yyyy "


def _filler(layout: str, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of filler from absolute offset ``start``: short lines, or one endless line."""
    unit = _LINE if layout == "lines" else _WORDS
    block = unit * (256 * KB // len(unit))
    pos = start % len(unit)
    while length > 0:
        piece = block[pos : pos + length]
        yield piece
        length -= len(piece)
        pos = 0


def _between(layout: str, start: int, end: int, *, after_secret: bool, before_secret: bool) -> Iterator[bytes]:
    """Filler for ``[start, end)``. In "long lines", no newline within ``PAD`` of a secret."""
    if layout != "long lines":
        yield from _filler(layout, start, end - start)
        return
    lines_from = min(end, start + PAD) if after_secret else start
    lines_to = max(lines_from, end - PAD) if before_secret else end
    yield from _filler("one line", start, lines_from - start)
    yield from _filler("lines", lines_from, lines_to - lines_from)
    yield from _filler("one line", lines_to, end - lines_to)


def _placed(layout: str, size: int, secrets: dict[int, bytes]) -> Iterator[bytes]:
    """The output, ``size`` bytes ending in a newline, with each secret at its offset (offset -> bytes);
    in "lines" each secret is a line of its own."""
    pos = 0
    for start, text in sorted(secrets.items()):
        if layout == "lines":
            start, text = start - 1, b"\n" + text + b"\n"
        assert start >= pos, "secrets overlap"
        yield from _between(layout, pos, start, after_secret=pos > 0, before_secret=True)
        yield text
        pos = start + len(text)
    yield from _between(layout, pos, size - 1, after_secret=pos > 0, before_secret=False)
    yield b"\n"


def _capture(chunks: Iterator[bytes]) -> CapturedOutput:
    capture = BoundedCapture.from_limits(LIMITS)
    for chunk in chunks:
        capture.write(chunk)
    return capture.result()


def everything_shown(output: CapturedOutput) -> tuple[str, bool]:
    """All the production path shows of this output (the message view, the message, the file), and
    whether the message says the full output is attached (``views.files_needed`` for one task)."""
    result = ExecResult(TARGET, "cat app.log", 0, "ok", 1.0, output, "s-1")
    view = task_result_view(result, REDACTOR)
    text, blocks = render_result(RUN, [view])
    # The message view itself too: what any renderer is handed, before Slack's budget hides most of it.
    shown = "\n".join((view.output.head, view.output.tail, text, str(blocks), full_output_text(output, REDACTOR)))
    return shown, result_cut(view)


def pieces_of_the_value(shown: str) -> list[str]:
    return [VALUE[i : i + 5] for i in range(len(VALUE) - 4) if VALUE[i : i + 5] in shown]


OFFSETS = tuple(offsets_in(SHAPES[0]))
# Run ``r`` puts, at the k-th cut point, shape ``(k + r) % 5`` cut at offset ``(k + r // 5) % 5``: the 25
# runs of a size give every cut point every (shape, offset) pair. A 20 MB output costs ~0.3 s, so there
# the five runs of the diagonal give every cut point every shape and every offset.
ALL_RUNS = range(len(SHAPES) * len(OFFSETS))
DIAGONAL = tuple(r for r in ALL_RUNS if r % len(SHAPES) == r // len(SHAPES))
CASES = [
    pytest.param(size_name, layout, run, id=f"{size_name}-{layout.replace(' ', '_')}-run{run}")
    for size_name in SIZES
    for layout in ("lines", "long lines", "one line")
    for run in (DIAGONAL if size_name == "20MB" else ALL_RUNS)
]


@pytest.mark.parametrize(("size_name", "layout", "run"), CASES)
def test_nothing_after_a_key_shows_unredacted_at_any_cut(size_name: str, layout: str, run: int) -> None:
    size = SIZES[size_name]
    secrets: dict[int, bytes] = {}
    placed: dict[str, str] = {}
    for k, (point_name, at) in enumerate(sorted(cut_points(size).items(), key=lambda p: p[1])):
        shape = SHAPES[(k + run) % len(SHAPES)]
        offset_name = OFFSETS[(k + run // len(SHAPES)) % len(OFFSETS)]
        secrets[at - offsets_in(shape)[offset_name]] = f"{shape[0]}{VALUE}{shape[1]}".encode()
        placed[point_name] = f"{shape[0]!r} cut {offset_name}"
    output = _capture(_placed(layout, size, secrets))
    assert output.total_bytes == size
    shown, file_attached = everything_shown(output)
    assert file_attached == (size > KB)
    assert pieces_of_the_value(shown) == [], placed


def test_the_cases_reach_every_cut() -> None:
    """The matrix above is not vacuous: the outputs really are cut where the secrets are placed."""
    assert set(cut_points(20 * MB)) == {"render head", "message head", "file spool", "message/file tail",
                                        "render tail"}
    assert set(cut_points(MB)) == {"render head", "message head", "message/file tail", "render tail"}
    output = _capture(_placed("long lines", 20 * MB, {}))
    assert output.truncated and output.file_truncated
    secret = b"password = " + VALUE.encode()
    tail_at = 20 * MB - LIMITS.tail_bytes
    one_line = _capture(_placed("one line", 20 * MB, {LIMITS.head_bytes - 13: secret, tail_at - 14: secret}))
    # The capture itself splits the secrets: the value begins the tail, its key ends in the gap.
    assert one_line.head.endswith(b"password = Qz") and one_line.tail.startswith(VALUE[3:].encode())
