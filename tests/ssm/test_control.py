"""Boto3SessionControl / Boto3DataKeyProvider: the calls made, and AWS errors mapped to clear sentences."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.ssm.control import Boto3SessionControl
from bot.ssm.errors import KmsAccessError, SessionControlError
from bot.ssm.kms import Boto3DataKeyProvider

SID = "ecs-execute-command-0123456789abcdef0"


def client(service: str, **kw: Any) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y", **kw
    )


async def test_resume_returns_the_new_token_and_none_when_the_session_is_gone() -> None:
    ssm = client("ssm")
    with Stubber(ssm) as stub:
        stub.add_response("resume_session", {"SessionId": SID, "TokenValue": "NEW"}, {"SessionId": SID})
        stub.add_client_error("resume_session", "DoesNotExistException", "gone", expected_params={"SessionId": SID})
        control = Boto3SessionControl(ssm)
        assert await control.resume_session(SID) == "NEW"
        assert await control.resume_session(SID) is None


@pytest.mark.parametrize("action", ["resume_session", "terminate_session"])
async def test_access_denied_names_the_missing_permission(action: str) -> None:
    ssm = client("ssm")
    with Stubber(ssm) as stub:
        stub.add_client_error(action, "AccessDeniedException", "User is not authorized")
        control = Boto3SessionControl(ssm)
        with pytest.raises(SessionControlError) as info:
            await getattr(control, action)(SID)
    name = "ResumeSession" if action == "resume_session" else "TerminateSession"
    assert f"ssm:{name}" in info.value.message and f"ssm:{name}" in (info.value.fix or "")


async def test_terminate_of_a_finished_session_is_not_an_error() -> None:
    ssm = client("ssm")
    with Stubber(ssm) as stub:
        stub.add_client_error("terminate_session", "DoesNotExistException", "gone")
        await Boto3SessionControl(ssm).terminate_session(SID)
        stub.assert_no_pending_responses()


class _Recorder(BaseHTTPRequestHandler):
    targets: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).targets.append(self.headers.get("X-Amz-Target", ""))
        body = json.dumps({"SessionId": SID}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ssm_endpoint() -> Iterator[str]:
    _Recorder.targets = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_calls_go_to_the_ssm_endpoint_from_aws_endpoint_url_ssm(
    ssm_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # §11.6: the plugin sends these to whatever endpoint the CLI passed (the ECS one); we use a real SSM
    # client, so the standard per-service endpoint variable applies.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", ssm_endpoint)
    await Boto3SessionControl(client("ssm")).terminate_session(SID)
    assert _Recorder.targets == ["AmazonSSM.TerminateSession"]


async def test_unreachable_ssm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        from botocore.config import Config

        ssm = client("ssm", endpoint_url=url, config=Config(retries={"max_attempts": 1}, connect_timeout=1))
        with pytest.raises(SessionControlError, match="could not be reached"):
            await Boto3SessionControl(ssm).terminate_session(SID)


async def test_data_key_provider_asks_for_64_bytes_with_the_context() -> None:
    kms = client("kms")
    context = {"aws:ssm:SessionId": SID, "aws:ssm:TargetId": "ecs:c_t_r"}
    with Stubber(kms) as stub:
        stub.add_response(
            "generate_data_key",
            {"Plaintext": bytes(64), "CiphertextBlob": b"blob", "KeyId": "k"},
            {"KeyId": "k", "NumberOfBytes": 64, "EncryptionContext": context},
        )
        stub.add_client_error("generate_data_key", "AccessDeniedException", "not allowed")
        provider = Boto3DataKeyProvider(kms)
        assert await provider.generate_data_key("k", context) == (bytes(64), b"blob")
        with pytest.raises(KmsAccessError) as info:
            await provider.generate_data_key("k", context)
    assert "kms:GenerateDataKey" in info.value.message and "AccessDeniedException" in info.value.message
