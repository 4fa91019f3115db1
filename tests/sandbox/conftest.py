from __future__ import annotations

from collections.abc import AsyncIterator

import boto3
import pytest

from standins.agent import LocalAgent


@pytest.fixture
async def agent() -> AsyncIterator[LocalAgent]:
    a = LocalAgent()
    await a.start()
    try:
        yield a
    finally:
        await a.stop()


def aws_client(service: str, endpoint: str, region: str = "eu-west-3"):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
