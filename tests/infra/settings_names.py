"""The environment variable names `bot.settings.Settings` reads (its validation aliases)."""

from __future__ import annotations

from bot.settings import Settings


def settings_env_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names |= {str(c) for c in choices}
        elif isinstance(alias, str):
            names.add(alias)
    return names
