# syntax=docker/dockerfile:1.7
#
# ecs-exec-bot image: `docker build -t ecs-exec-bot .`
#
# Two stages so the runtime image carries no compiler, no build cache and no source tree:
#   builder  turns the project and its dependencies into wheels (compilers available, just in case a
#            dependency has no wheel for the target platform);
#   runtime  installs those wheels offline, as a non-root numeric UID, with a read-only-root friendly layout.
# The base is pinned by full tag (patch release + Debian release) so rebuilds are reproducible; bump it
# deliberately, both lines together. Not by digest yet: see "Base image pin" in README.md (the digest has
# to come from the registry; append `@sha256:…` to both FROM lines once inspected).

############################
FROM python:3.12.8-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Only for dependencies that ship no wheel for this platform (all current ones do on amd64/arm64). Not
# version-pinned: the builder stage never reaches the runtime image, and the Debian release is pinned above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# pyproject first: the dependency layer is reused while only the code changes.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers

# `.` without extras: the runtime gets the bot's dependencies only, never the sandbox (moto) or test extras.
RUN pip wheel --wheel-dir /wheels .

############################
FROM python:3.12.8-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="ecs-exec-bot" \
      org.opencontainers.image.description="Slack ChatOps bot that runs approved commands in ECS tasks over ECS Exec" \
      org.opencontainers.image.licenses="Apache-2.0"

# PYTHONDONTWRITEBYTECODE: the root filesystem may be read-only, so never try to write .pyc files at run time.
# PYTHONUNBUFFERED: log lines reach `docker logs` / CloudWatch immediately, not when a buffer fills.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=3000 \
    ECS_EXEC_BOT_SQLITE_PATH=/data/ecs-exec-bot.sqlite3 \
    HOME=/data

# A fixed numeric UID/GID (not 0, not a name) so `runAsNonRoot`-style checks can verify it without reading
# /etc/passwd, and so volume ownership is predictable. The only writable paths the bot needs are VOLUMEs
# owned by that UID: /data (SQLite store; also the temp-file fallback, since tempfile skips an unwritable
# /tmp) and /etc/ecs-exec-bot (the YAML config, written there by infra/bot's init container). ECS and Docker
# copy the ownership into a fresh volume, so the root filesystem can stay read-only.
RUN groupadd --system --gid 10001 ecsexec \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
            --shell /usr/sbin/nologin ecsexec \
 && mkdir -p /data /etc/ecs-exec-bot \
 && chown 10001:10001 /data /etc/ecs-exec-bot \
 && chmod 0750 /data /etc/ecs-exec-bot

# Install from the builder's wheels without copying them into a layer (bind mount), offline (--no-index):
# what runs is exactly what was built. pip compiles the .pyc files here, while the filesystem is writable.
# (DL3013: the version is pinned by the wheel directory, which holds exactly one ecs-exec-bot.)
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels ecs-exec-bot

VOLUME ["/data", "/etc/ecs-exec-bot"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000

# `ecs-exec-bot serve` answers GET /healthz on $PORT in both Slack modes (HTTP and Socket Mode). There is no
# curl in the image: python's urllib raises (exit 1) on a refused connection, a timeout or an HTTP error status
# (503 while draining or while Socket Mode is disconnected). The port is read the way bot.config.Settings
# reads it: ECS_EXEC_BOT_PORT first, then PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('ECS_EXEC_BOT_PORT') or os.environ.get('PORT') or '3000'), timeout=4)"]

ENTRYPOINT ["ecs-exec-bot"]
CMD ["serve"]
