"""Process settings: secrets and process knobs, from the environment (12-factor) and an optional `.env`.

Apart from ``bot.config`` (the YAML file) because importing pydantic-settings (asyncio and dotenv behind
it) is a large part of a short command's start-up, which commands that only read the file
(`ecs-exec-bot policy`) must not pay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.store import DEFAULT_SQLITE_PATH, DYNAMODB_TABLE_ENV, REGION_ENVS, SQLITE_PATH_ENV, STORE_ENV


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Process settings. Every field is read from the environment variable(s) named in its alias."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: str | None = Field(default=None, repr=False, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: str | None = Field(default=None, repr=False, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: str | None = Field(
        default=None, repr=False, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    # Overridable so tests and the demo can point the Web API client at a local fake.
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    host: str = Field(default="0.0.0.0", validation_alias=_env("ECS_EXEC_BOT_HOST", "HOST"))
    port: int = Field(default=3000, ge=0, le=65535, validation_alias=_env("ECS_EXEC_BOT_PORT", "PORT"))
    config_file: Path | None = Field(default=None, validation_alias=_env("ECS_EXEC_BOT_CONFIG"))
    # The store's names and defaults are owned by bot/store (its light reader serves `audit`).
    store: Literal["sqlite", "dynamodb"] = Field(default="sqlite", validation_alias=_env(STORE_ENV))
    sqlite_path: Path = Field(default=DEFAULT_SQLITE_PATH, validation_alias=_env(SQLITE_PATH_ENV))
    dynamodb_table: str | None = Field(default=None, validation_alias=_env(DYNAMODB_TABLE_ENV))
    audit_channel: str | None = Field(default=None, validation_alias=_env("ECS_EXEC_BOT_AUDIT_CHANNEL"))
    # Audit records older than this are pruned daily; 0 keeps them forever (outlives every approval TTL).
    audit_retention_days: float = Field(default=365, ge=0, validation_alias=_env("ECS_EXEC_BOT_AUDIT_RETENTION_DAYS"))
    aws_region: str | None = Field(default=None, validation_alias=_env(*REGION_ENVS))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=_env("ECS_EXEC_BOT_LOG_LEVEL", "LOG_LEVEL")
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def load_settings(**overrides: Any) -> Settings:
    """``Settings()`` with pydantic's errors turned into one ``ConfigError`` sentence."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        raise ConfigError(
            f"Setting {name} is invalid: {err['msg']}.",
            fix="Correct the environment variable (or .env entry) and restart.",
        ) from None
    if settings.store == "dynamodb" and not settings.dynamodb_table:
        raise ConfigError(
            "ECS_EXEC_BOT_STORE=dynamodb needs a table name.",
            fix="Set ECS_EXEC_BOT_DYNAMODB_TABLE.",
        )
    return settings
