"""The Dockerfile reader and its rules catch the mistakes the image tests exist for."""

from __future__ import annotations

import pytest

from tests.infra import dockerfile as df

GOOD = """\
# syntax=docker/dockerfile:1.7
FROM python:3.12.8-slim-bookworm AS builder
RUN apt-get update \\
 && apt-get install -y build-essential
FROM python:3.12.8-slim-bookworm
ENV A=1 B="two words"
USER 10001:10001
HEALTHCHECK --interval=30s CMD ["python", "-c", "print(1)"]
ENTRYPOINT ["ecs-exec-bot"]
"""


def test_stages_flags_env_and_continuations() -> None:
    builder, final = df.parse(GOOD)
    assert builder.name == "builder" and final.name is None
    assert "build-essential" in builder.all("RUN")[0].args  # the continuation was joined
    assert final.env() == {"A": "1", "B": "two words"}
    (health,) = final.all("HEALTHCHECK")
    assert health.flags == {"interval": "30s"}
    assert df.healthcheck_argv(health) == ["python", "-c", "print(1)"]
    assert final.all("ENTRYPOINT")[0].exec_form() == ["ecs-exec-bot"]


def test_build_tools_are_found_where_installed() -> None:
    builder, final = df.parse(GOOD)
    assert df.build_tool_mentions(builder) == ["line 3: build-essential"]
    assert df.build_tool_mentions(final) == []
    (bad,) = df.parse("FROM python:3.12.8-slim\nRUN apt-get install -y gcc make\n")
    assert df.build_tool_mentions(bad) == ["line 2: gcc", "line 2: make"]


@pytest.mark.parametrize(
    ("user", "ok"),
    [
        ("10001:10001", True),
        ("10001", True),
        ("0", False),
        ("root", False),
        ("app", False),
        ("10001:0", False),
    ],
)
def test_user_must_be_numeric_and_not_root(user: str, ok: bool) -> None:
    assert df.user_is_non_root_numeric(user) is ok


def test_healthcheck_must_be_exec_form() -> None:
    (stage,) = df.parse("FROM python:3.12.8-slim\nHEALTHCHECK CMD curl -f http://localhost/\n")
    with pytest.raises(df.DockerfileError, match="exec"):
        df.healthcheck_argv(stage.all("HEALTHCHECK")[0])


@pytest.mark.parametrize(
    "text",
    ["RUN echo no from\n", "FROM a b c d\n", "FROM python:3.12\nFOO bar\n", "FROM python:3.12\nRUN a \\\n"],
)
def test_malformed_dockerfiles_are_rejected(text: str) -> None:
    with pytest.raises(df.DockerfileError):
        df.parse(text)
