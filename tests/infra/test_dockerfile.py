"""The image, checked by reading the Dockerfile (no Docker engine here): multi-stage, pinned slim base,
no build tools at run time, numeric non-root user, urllib health check, read-only-root friendly."""

from __future__ import annotations

import re
import tomllib

import pytest

from handlers.server.http import HEALTH_PATH
from tests.infra import dockerfile as df
from tests.infra.terraform import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
STAGES = df.parse(DOCKERFILE)
FINAL = STAGES[-1]
PINNED_SLIM_PYTHON = re.compile(r"^python:3\.1[12]\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


def test_multi_stage_with_a_builder_that_makes_wheels() -> None:
    assert len(STAGES) >= 2
    builder = STAGES[0]
    assert builder.name, "the builder stage is named so the runtime stage can mount from it"
    runs = " ".join(i.args for i in builder.all("RUN"))
    assert re.search(r"pip wheel\b.*--wheel-dir", runs), "the builder turns the project into wheels"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name or s.base)
def test_every_stage_uses_a_pinned_slim_python_base(stage: df.Stage) -> None:
    assert PINNED_SLIM_PYTHON.match(stage.base), f"{stage.base}: pin python:3.1x.y-slim-<debian> by tag"


def test_final_stage_has_no_build_tools_and_no_source_tree() -> None:
    assert df.build_tool_mentions(FINAL) == []
    # The runtime installs wheels from the builder; it never copies the source or compiles anything.
    assert not FINAL.all("COPY") and not FINAL.all("ADD")
    assert FINAL.base == STAGES[0].base, "same base as the builder, so its wheels match the interpreter"


def test_runtime_installs_the_package_from_wheels_without_extras() -> None:
    (install,) = [i for i in FINAL.all("RUN") if "pip install" in i.args]
    assert "--no-index" in install.args, "offline: only the wheels the builder made"
    assert re.search(r"\becs-exec-bot\b(?!\[)", install.args), "the package itself, no [extras]"
    assert install.flags.get("mount", "").startswith("type=bind,from=builder"), "wheels stay out of the image"
    builder_runs = " ".join(i.args for i in STAGES[0].all("RUN"))
    assert "[sandbox" not in builder_runs and "[test" not in builder_runs


def test_runs_as_a_numeric_non_root_user_after_all_root_steps() -> None:
    users = FINAL.all("USER")
    assert users, "the final stage sets USER"
    assert df.user_is_non_root_numeric(users[-1].args), f"USER {users[-1].args} must be numeric and not 0"
    last_user_at = FINAL.instructions.index(users[-1])
    assert not [i for i in FINAL.instructions[last_user_at:] if i.keyword == "RUN"], "no RUN after USER"
    creates = " ".join(i.args for i in FINAL.all("RUN"))
    uid, gid = users[-1].args.split(":")
    assert f"--uid {uid}" in creates and f"--gid {gid}" in creates


def test_entrypoint_and_cmd_are_the_cli_and_serve() -> None:
    (entrypoint,) = FINAL.all("ENTRYPOINT")
    (cmd,) = FINAL.all("CMD")
    assert entrypoint.exec_form() == ["ecs-exec-bot"]
    assert cmd.exec_form() == ["serve"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "ecs-exec-bot" in scripts, "the ENTRYPOINT is the console script pyproject installs"


def test_environment_defaults() -> None:
    env = FINAL.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PORT"] == "3000"
    assert env["ECS_EXEC_BOT_SQLITE_PATH"].startswith("/data/"), "SQLite lives on the writable volume"
    (expose,) = FINAL.all("EXPOSE")
    assert expose.args == env["PORT"]


def test_writable_paths_are_volumes_owned_by_the_runtime_user() -> None:
    (volume,) = FINAL.all("VOLUME")
    paths = volume.exec_form()
    assert paths is not None and "/data" in paths
    uid = FINAL.all("USER")[-1].args.split(":")[0]
    chowns = [i.args for i in FINAL.all("RUN") if "chown" in i.args]
    for path in paths:
        assert any(re.search(rf"chown {uid}:\d+ [^&]*{re.escape(path)}\b", c) for c in chowns), path


def test_healthcheck_uses_python_urllib_on_healthz_and_port() -> None:
    (health,) = FINAL.all("HEALTHCHECK")
    argv = df.healthcheck_argv(health)
    assert argv[:2] == ["python", "-c"] and len(argv) == 3
    code = argv[2]
    compile(code, "<healthcheck>", "exec")
    assert "urllib.request.urlopen" in code and f"{HEALTH_PATH}'" in code
    assert "http://127.0.0.1:" in code
    assert "PORT" in code and "ECS_EXEC_BOT_PORT" in code
    assert not [i for s in STAGES for i in s.instructions if "curl" in i.args or "wget" in i.args]
    assert {"interval", "timeout", "retries"} <= set(health.flags)


def test_dockerignore_lets_in_exactly_what_the_builder_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "exclude everything by default"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for copy in STAGES[0].all("COPY"):
        *sources, _dest = copy.args.split()
        for src in sources:
            assert src.rstrip("/") in included, f"COPY {src} is excluded by .dockerignore"
