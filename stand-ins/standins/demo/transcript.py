"""Channel events rendered as a terminal shows a Slack channel (pure: events in, lines out).

Slack's own formatting is translated, not dumped: ``<@U0ALICE>`` becomes ``@alice``, ``<!date^…|…>`` its
fallback text, ``&lt;`` ``<``, ``*bold*`` bold, ``:white_check_mark:`` ✅, code blocks an indented
gutter, buttons ``[ Approve ]``. Colour (ANSI) only when the `Style` says so (a TTY without
``NO_COLOR``); on a terminal that cannot encode emoji, they become short ASCII tags.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from standins.demo.channel import Event, Message, SharedFile, UserAction

# Shortcodes the bot uses (and a few common ones), as Unicode and as ASCII for terminals without it.
EMOJI: dict[str, tuple[str, str]] = {
    "white_check_mark": ("✅", "[ok]"),
    "heavy_check_mark": ("✔", "[ok]"),
    "x": ("❌", "[x]"),
    "warning": ("⚠", "[!]"),
    "hourglass_flowing_sand": ("⏳", "[..]"),
    "hourglass": ("⌛", "[expired]"),
    "stopwatch": ("⏱", "[timeout]"),
    "no_entry": ("⛔", "[refused]"),
    "no_entry_sign": ("🚫", "[refused]"),
    "raised_hand": ("✋", "[approval]"),
    "stop_sign": ("🛑", "[stopped]"),
    "paperclip": ("📎", "[file]"),
    "rotating_light": ("🚨", "[!!]"),
    "stethoscope": ("🩺", "[doctor]"),
    "lock": ("🔒", "[lock]"),
    "information_source": ("ℹ", "[i]"),
    "mag": ("🔍", "[?]"),
}
# Characters the bot may put in text directly, for terminals that cannot print them.
_ASCII = {ord(u): a for u, a in EMOJI.values()} | {
    ord("·"): "-", ord("…"): "...", ord("—"): "--", ord("–"): "-", ord("↳"): "->", ord("•"): "*",
    ord("│"): "|", ord("─"): "-", ord("┆"): ":", ord("⋯"): "...", ord("›"): ">", ord("\ufe0f"): "", ord("✓"): "v", ord("→"): "->",
}

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]*)(?:\|([^>]*))?>")
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")
_PLACEHOLDER = re.compile("\x00([0-9]+)\x00")
_FENCE = "```"


@dataclass(frozen=True)
class Style:
    color: bool = False
    unicode: bool = True
    # A code block longer than this shows its first and last lines only (0 = never fold), the way Slack
    # folds a long message behind "Show more"; the demo's --full turns it off.
    fold_code_lines: int = 14

    def paint(self, text: str, *codes: str) -> str:
        # Each attribute is switched off by its own code (22 = normal intensity, 39 = default colour),
        # not by a full reset, so paint() nests: bold text keeps its bold around a coloured code span.
        if not self.color or not codes or not text:
            return text
        off = sorted({"22" if code in (BOLD, DIM) else "23" if code == ITALIC else "39" for code in codes})
        return f"\x1b[{';'.join(codes)}m{text}\x1b[{';'.join(off)}m"

    def ascii(self, text: str) -> str:
        return text if self.unicode else text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


BOLD, DIM, ITALIC = "1", "2", "3"
RED, GREEN, YELLOW, BLUE, MAGENTA, CYAN = "31", "32", "33", "34", "35", "36"


def style_for(stream: TextIO, environ: Mapping[str, str] | None = None) -> Style:
    """Colour only on a TTY, never with ``NO_COLOR`` set (no-color.org) or ``TERM=dumb``."""
    env = os.environ if environ is None else environ
    isatty = getattr(stream, "isatty", None)
    color = bool(isatty and isatty()) and not env.get("NO_COLOR") and env.get("TERM") != "dumb"
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✅⏳│".encode(encoding)
        unicode = True
    except (UnicodeEncodeError, LookupError):
        unicode = False
    return Style(color=color, unicode=unicode)


@dataclass(frozen=True)
class Names:
    """Display names of Slack IDs (users, channels); unknown IDs are shown as they are."""

    users: Mapping[str, str]
    channels: Mapping[str, str]

    def user(self, user_id: str | None) -> str:
        return "@" + self.users.get(user_id or "", user_id or "someone")

    def channel(self, channel_id: str | None) -> str:
        return "#" + self.channels.get(channel_id or "", channel_id or "channel")


# -- mrkdwn -----------------------------------------------------------------------------------------------


def inline_text(text: str, names: Names, style: Style) -> str:
    """One run of Slack mrkdwn (no code fences) as terminal text."""
    # Inline code is literal in Slack (no bold, no emoji inside it), but bold may span it: set the code
    # spans aside behind placeholders, format the rest, then put them back.
    spans: list[str] = []

    def aside(m: re.Match[str]) -> str:
        spans.append(m[0])
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE.sub(aside, text)
    text = _USER.sub(lambda m: style.paint(names.user(m[1]), BOLD), text)
    text = _CHANNEL.sub(lambda m: "#" + (m[2] or names.channels.get(m[1], m[1])), text)
    text = _SPECIAL.sub(lambda m: "@" + m[1], text)
    text = _GROUP.sub(lambda m: m[2] or "@" + m[1], text)
    text = _DATE.sub(lambda m: m[1], text)
    text = _LINK.sub(lambda m: m[2] or m[1], text)
    text = _SHORTCODE.sub(lambda m: _emoji(m[1], m[0], style), text)
    text = _BOLD.sub(lambda m: style.paint(m[1], BOLD), text)
    text = _ITALIC.sub(lambda m: style.paint(m[1], ITALIC), text)
    text = _PLACEHOLDER.sub(lambda m: style.paint(spans[int(m[1])], CYAN), text)
    return style.ascii(html.unescape(text))


def _folded(lines: list[str], style: Style) -> list[str]:
    lines = [style.ascii(html.unescape(line)) for line in lines]
    limit = style.fold_code_lines
    if not limit or len(lines) <= limit:
        return lines
    keep = max(1, (limit - 1) // 2)
    hidden = len(lines) - 2 * keep
    fold = style.paint(style.ascii(f"⋯ {hidden:,} more lines (--full prints them)"), DIM)
    return [*lines[:keep], fold, *lines[-keep:]]


def _emoji(name: str, original: str, style: Style) -> str:
    pair = EMOJI.get(name)
    if pair is None:
        return original
    return pair[0] if style.unicode else pair[1]


def mrkdwn_lines(text: str, names: Names, style: Style) -> list[str]:
    """Slack mrkdwn as lines; code blocks become an indented gutter (their content is not formatted)."""
    out: list[str] = []
    parts = text.split(_FENCE)
    if len(parts) % 2 == 0:  # an unclosed fence is plain text
        parts[-2:] = [parts[-2] + _FENCE + parts[-1]]
    for i, part in enumerate(parts):
        if i % 2 == 1:  # inside a fence
            body = part[1:] if part.startswith("\n") else part
            body = body[:-1] if body.endswith("\n") else body
            gutter = style.paint(style.ascii("┆ "), DIM)
            out.extend(gutter + line for line in _folded(body.split("\n"), style))
            continue
        chunk = part.strip("\n") if i else part.rstrip("\n")
        if not chunk and (i or len(parts) > 1):
            continue
        out.extend(inline_text(line, names, style) for line in chunk.split("\n"))
    return out


# -- blocks -----------------------------------------------------------------------------------------------


def _text_object(obj: Any, names: Names, style: Style) -> list[str]:
    if not isinstance(obj, Mapping):
        return []
    text = str(obj.get("text") or "")
    if obj.get("type") == "plain_text":
        return [style.ascii(line) for line in text.split("\n")]
    return mrkdwn_lines(text, names, style)


def block_lines(block: Mapping[str, Any], names: Names, style: Style) -> list[str]:
    kind = block.get("type")
    if kind == "section":
        lines = _text_object(block.get("text"), names, style)
        for field in block.get("fields") or ():
            lines += _text_object(field, names, style)
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping) and accessory.get("type") == "button":
            lines.append(_buttons([accessory], style))
        return lines
    if kind == "header":
        return [style.paint(line, BOLD) for line in _text_object(block.get("text"), names, style)]
    if kind == "context":
        parts = []
        for element in block.get("elements") or ():
            if isinstance(element, Mapping) and element.get("type") in ("mrkdwn", "plain_text"):
                parts.append(" ".join(_text_object(element, names, style)))
        return [style.paint(" ".join(parts), DIM)] if parts else []
    if kind == "actions":
        buttons = [e for e in block.get("elements") or () if isinstance(e, Mapping) and e.get("type") == "button"]
        return [_buttons(buttons, style)] if buttons else []
    if kind == "divider":
        return [style.paint(style.ascii("─" * 40), DIM)]
    if kind == "image":
        return [f"[image: {block.get('alt_text') or ''}]"]
    if kind == "rich_text":
        return [style.ascii(line) for line in _rich_text(block).split("\n")]
    return []


def _buttons(buttons: Iterable[Mapping[str, Any]], style: Style) -> str:
    colours = {"primary": GREEN, "danger": RED}
    rendered = []
    for b in buttons:
        label = str((b.get("text") or {}).get("text") or b.get("action_id") or "button")
        rendered.append(style.paint(f"[ {style.ascii(label)} ]", BOLD, colours.get(str(b.get("style")), BLUE)))
    return "  ".join(rendered)


def _rich_text(block: Mapping[str, Any]) -> str:
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("type") == "text":
                out.append(str(node.get("text") or ""))
            for child in node.get("elements") or ():
                walk(child)

    walk(block)
    return "".join(out)


def message_body(message: Message, names: Names, style: Style) -> list[str]:
    """The visible content: the blocks when there are any (Slack then shows ``text`` only in
    notifications), else the text."""
    lines: list[str] = []
    for block in message.blocks:
        lines += block_lines(block, names, style)
    if not lines:
        lines = mrkdwn_lines(message.text, names, style)
    return lines


# -- events -----------------------------------------------------------------------------------------------

INDENT = "    "


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def event_lines(event: Event, names: Names, style: Style) -> list[str]:
    if isinstance(event, UserAction):
        who = style.paint(names.user(event.user_id), BOLD, YELLOW)
        lines = [f"{who} › {style.paint(event.text, BOLD)}"]
    elif isinstance(event, Message):
        lines = _message_lines(event, names, style)
    else:
        lines = _file_lines(event, names, style)
    return [style.ascii(line) for line in lines]


def _header(author: str, where: str, style: Style) -> str:
    return f"  {style.paint(author, BOLD, MAGENTA)} {style.paint('APP', DIM)}  {style.paint(style.ascii(where), DIM)}"


def _message_lines(message: Message, names: Names, style: Style) -> list[str]:
    if message.visibility == "ephemeral":
        where = f"only visible to {names.user(message.to_user)}"
    elif message.thread_ts:
        where = f"in the thread · {names.channel(message.channel_id)}"
    else:
        where = names.channel(message.channel_id) if message.channel_id else "in the channel"
    if message.edited:
        where += " · (edited)"
    body = [f"{INDENT}{line}" for line in message_body(message, names, style)]
    return [_header(names.user(message.author_id)[1:], where, style), *body]


def _file_lines(file: SharedFile, names: Names, style: Style) -> list[str]:
    where = f"in the thread · {names.channel(file.channel_id)}" if file.thread_ts else names.channel(file.channel_id)
    clip = _emoji("paperclip", "", style)
    title = f' "{file.title}"' if file.title else ""
    lines = [
        _header(names.user(file.author_id)[1:], where, style),
        f"{INDENT}{clip} {style.paint(file.name, BOLD)} · {human_size(file.size)} · "
        f"{file.total_lines:,} lines{title}",
    ]
    gutter = style.paint(style.ascii("┆ "), DIM)
    lines += [f"{INDENT}{gutter}{style.ascii(line)}" for line in file.head]
    hidden = file.total_lines - len(file.head)
    if hidden > 0:
        lines.append(f"{INDENT}{gutter}{style.paint(style.ascii(f'… {hidden:,} more lines in the file'), DIM)}")
    return lines


def heading_lines(number: int | None, title: str, note: str | None, style: Style) -> list[str]:
    label = style.ascii(f"{number}. {title}" if number is not None else title)
    rule = style.ascii("─" * max(4, 72 - len(label)))
    lines = ["", style.paint(f"{style.ascii('──')} {label} {rule}", BOLD, CYAN)]
    if note:
        lines.append(style.paint(style.ascii(note), DIM))
    return lines
