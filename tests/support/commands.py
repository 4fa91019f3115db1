"""The simple commands of a text the policy's splitter accepts, or None when it refuses the text: what
the property and lookup tests check on their random commands (a refused text has nothing to check)."""

from __future__ import annotations

from bot.shell_syntax import ShellSyntaxRefused, SimpleCommand, parse_pipeline


def accepted_pipeline(text: str) -> tuple[SimpleCommand, ...] | None:
    try:
        return parse_pipeline(text)
    except ShellSyntaxRefused:
        return None
