"""Output end to end: long output → truncated message + full file in the thread; secrets never leave."""

from __future__ import annotations

from pathlib import Path

from tests.slack.e2e_helpers import all_text, everything_sent, message_text
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import BotHarness

# Realistic shapes, none of them real credentials.
SECRETS = {
    "aws-access-key-id": "AKIAQ3EGRRSVUC6DX7KM",
    "aws-secret-key": "aws_secret_access_key = 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",
    "slack-bot-token": "xoxb-215987612345-4815162342108-Qw8eRt5yUi2oPa9sDf3gHj7k",
    "github-token": "ghp_8fKx2LmQ9rTz4VbN7cWy1Hs6Jd3Pg5Ae0UoI",
    "stripe-live": "sk_live_51HqLkB2eZvKYlo2C9xQ8wE7rT6yU",
    "google-api-key": "AIzaSyD3f9Kq2Lm8Nx7Vb4Cz1Hs6Jd5Pg0Ae9Uo",
    "jwt": "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFsaWNlIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "password-assignment": "DB_PASSWORD=Tr0ub4dor-and-3-horses",
    "dsn": "postgres://app:s3cr3t-P4ssw0rd@db.internal:5432/app",
    "custom-policy-pattern": "itk_Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7",
    "private-key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Rr7q9Xk\nb1Yx0Zf8Hn4Kc2Lp9Qr3St7Uv1Wx5Yz8Ab2Cd6Ef0Gh4\n-----END RSA PRIVATE KEY-----",
}
# The part of each corpus line that must never reach Slack.
SECRET_VALUES = [
    "AKIAQ3EGRRSVUC6DX7KM",
    "Zq9vN3dWk1Lr8tYp2Hs5Jc7Bx0Fg4Mn6Qe/Ua+Ti",
    "xoxb-215987612345-4815162342108-Qw8eRt5yUi2oPa9sDf3gHj7k",
    "ghp_8fKx2LmQ9rTz4VbN7cWy1Hs6Jd3Pg5Ae0UoI",
    "sk_live_51HqLkB2eZvKYlo2C9xQ8wE7rT6yU",
    "AIzaSyD3f9Kq2Lm8Nx7Vb4Cz1Hs6Jd5Pg0Ae9Uo",
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "Tr0ub4dor-and-3-horses",
    "s3cr3t-P4ssw0rd",
    "itk_Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7",
    "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Rr7q9Xk",
]


async def test_long_output_is_cut_in_the_message_and_uploaded_whole_in_the_thread(
    bot: BotHarness, fake: FakeSlack
) -> None:
    await bot.command("web seq 1 200000")
    update = (await fake.await_for("chat.update"))[-1]
    ts = str(update.params["ts"])
    text = message_text(fake, ts)
    assert "internal error" not in text
    assert "\n1\n2\n3\n" in text or "```1\n2\n3\n" in text
    for block in fake.messages[ts].get("blocks") or []:
        section = block.get("text")
        if isinstance(section, dict):
            assert len(section["text"]) <= 3000
    done = await fake.await_for("files.completeUploadExternal")
    assert done[0].params["channel_id"] == "C0INCIDENT"
    assert done[0].params["thread_ts"] == ts  # in the result message's thread
    grant = fake.calls("files.getUploadURLExternal")[0]
    content = next(iter(fake.uploads.values())).decode()
    assert int(grant.params["length"]) == len(content.encode())
    lines = content.splitlines()
    assert lines[0] == "1" and lines[-1] == "200000" and len(lines) == 200000


async def test_secrets_corpus_is_redacted_in_the_message_and_the_file(
    bot: BotHarness, fake: FakeSlack, tmp_path: Path
) -> None:
    corpus = "\n".join(SECRETS.values())
    filler = "\n".join(f"ordinary log line {i} GET /index.html 200 sha 3f2a9c0e1d" for i in range(3000))
    (tmp_path / "app.env").write_text(f"{corpus}\n{filler}\n{corpus}\n")
    await bot.command(f"web cat {tmp_path}/app.env")
    update = (await fake.await_for("chat.update"))[-1]
    await fake.await_for("files.completeUploadExternal")
    message = message_text(fake, str(update.params["ts"]))
    file_text = next(iter(fake.uploads.values())).decode()
    assert "[redacted:" in message and "[redacted:" in file_text
    assert "ordinary log line 2999" in file_text  # the file is the whole output, not just head/tail
    sent = everything_sent(fake)
    leaked = [s for s in SECRET_VALUES if s in sent]
    assert leaked == []
    assert all_text(update.params)  # sanity: the helper saw the message
