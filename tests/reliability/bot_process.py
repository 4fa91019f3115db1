"""The real bot in its own process, so a test can kill it (SIGKILL: no drain, no goodbye).

    python -m tests.reliability.bot_process --store bot.db --workdir DIR --slack-api URL [--replica-id ID]

AWS comes from the standard variables the parent sets (moto ECS + the local agent); Slack is the parent's
FakeSlack. Prints the bot's URL once it serves, then serves until killed or stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.aws import AwsClientFactory
from bot.runs.backend import AwsExecBackend
from bot.runs.limits import RunLimiter, RunLimits
from bot.services import Services, build_services
from bot.store.sqlite import SqliteStore
from handlers.app import SlackSettings
from handlers.server.runtime import RunningBot, ServeOptions, serve
from handlers.usergroups import UserGroupCache
from tests.reliability.support import make_config
from tests.support.slack_app import SIGNING_SECRET


async def main_async(args: argparse.Namespace) -> None:
    config = make_config(Path(args.workdir))

    async def services(client: AsyncWebClient, info: dict[str, Any]) -> Services:
        store = SqliteStore(args.store)
        backend = AwsExecBackend(config, AwsClientFactory(config.environments, default_region="us-east-1"))
        return build_services(
            config, store, backend, UserGroupCache(client), limiter=RunLimiter(store, RunLimits()),
            replica=args.replica_id,
        )

    slack = SlackSettings(bot_token="xoxb-test-token", signing_secret=SIGNING_SECRET, app_token=None,
                          api_url=args.slack_api)
    stop = asyncio.Event()

    def ready(running: RunningBot) -> None:
        print(running.url, flush=True)

    async def until_stdin_closes() -> None:
        await asyncio.to_thread(sys.stdin.read)
        stop.set()

    watcher = asyncio.create_task(until_stdin_closes())
    await serve(slack, services, ServeOptions(host="127.0.0.1", port=0), stop=stop, on_ready=ready,
                install_signal_handlers=False)
    watcher.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.bot_process")
    parser.add_argument("--store", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--slack-api", required=True)
    parser.add_argument("--replica-id", default=None)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
