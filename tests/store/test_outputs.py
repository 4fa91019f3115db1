"""Kept outputs: one contract, two places (a directory, S3 on a moto server over loopback)."""

from __future__ import annotations

import itertools
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from bot.errors import StoreError
from bot.store.outputs import DirectoryOutputs, KeptOutputs, KeptPart, KeptRun, text_chunks
from bot.store.outputs_s3 import S3Outputs
from tests.store.support import FakeClock, moto_dynamodb_server

_buckets = itertools.count()
DAY = 86400.0


def kept_run(request_id: str, clock: FakeClock, *, thread: str = "1700000000.000100", parts: int = 1) -> KeptRun:
    return KeptRun(
        request_id=request_id, requester="U0ALICE", channel="C0INCIDENT", thread_ts=thread, service="web",
        environment="prod", command="cat /var/log/nginx/access.log", kept_at=clock(), expires_at=clock() + DAY,
        parts=tuple(KeptPart(task_id=f"task{n}", container="nginx") for n in range(parts)),
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_dynamodb_server() as endpoint:  # one moto server serves every service
        yield endpoint


@pytest.fixture(params=["directory", "s3"])
def outputs(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> KeptOutputs:
    if request.param == "directory":
        return DirectoryOutputs(tmp_path / "kept", clock=clock)
    endpoint = request.getfixturevalue("s3_endpoint")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    bucket = f"kept-{next(_buckets)}"
    client.create_bucket(Bucket=bucket)
    return S3Outputs(client, bucket, "bot/outputs", clock=clock)


def test_a_kept_run_reads_back_line_by_line(outputs: KeptOutputs, clock: FakeClock) -> None:
    run = kept_run("abc123", clock, parts=2)
    outputs.put(run, ["one\ntwo\n", "ünïcode\nno newline at the end"])
    assert outputs.get("abc123") == run
    assert list(outputs.chunks("abc123", 0)) == ["one\ntwo"]
    assert list(outputs.chunks("abc123", 1)) == ["ünïcode\nno newline at the end"]
    assert outputs.latest_in_thread("C0INCIDENT", "1700000000.000100") == "abc123"
    assert outputs.latest_in_thread("C0INCIDENT", "1700000000.000999") is None
    assert outputs.latest_in_thread("C0OTHER", "1700000000.000100") is None


def test_the_thread_points_at_its_latest_run(outputs: KeptOutputs, clock: FakeClock) -> None:
    outputs.put(kept_run("first", clock), ["a\n"])
    clock.advance(5)
    outputs.put(kept_run("second", clock), ["b\n"])
    assert outputs.latest_in_thread("C0INCIDENT", "1700000000.000100") == "second"
    assert outputs.get("first") is not None  # the earlier run is still there, by its id


def test_an_expired_run_is_gone_and_pruned(outputs: KeptOutputs, clock: FakeClock) -> None:
    outputs.put(kept_run("old", clock), ["a\n"])
    clock.advance(DAY / 2)
    outputs.put(kept_run("new", clock, thread="1700000000.000200"), ["b\n"])
    clock.advance(DAY / 2 + 1)
    assert outputs.get("old") is None and outputs.get("new") is not None
    assert outputs.prune() == 1
    assert outputs.get("new") is not None and list(outputs.chunks("new", 0)) == ["b"]
    with pytest.raises(StoreError):
        list(outputs.chunks("old", 0))


@pytest.mark.parametrize("hostile", ["../../etc", "a/b", "", "x" * 65, "..", "a b"])
def test_a_request_id_never_names_a_path(outputs: KeptOutputs, hostile: str) -> None:
    with pytest.raises(StoreError):
        outputs.get(hostile)
    with pytest.raises(StoreError):
        list(outputs.chunks(hostile, 0))


def test_the_directory_is_owner_only_and_bounded_in_size(tmp_path: Path, clock: FakeClock) -> None:
    outputs = DirectoryOutputs(tmp_path / "kept", max_total_bytes=10_000, clock=clock)
    assert stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o700
    for n in range(5):
        outputs.put(kept_run(f"run{n}", clock, thread=f"1700000000.00010{n}"), ["x" * 3000])
        clock.advance(61)  # the size bound is checked at most once a minute
    assert outputs.prune() >= 0
    kept = [n for n in range(5) if outputs.get(f"run{n}") is not None]
    assert kept == [2, 3, 4]  # the oldest went first; 3 × 3,000 bytes + descriptions fit
    assert outputs.latest_in_thread("C0INCIDENT", "1700000000.000100") is None  # its index went with it


def test_text_comes_in_pieces_of_whole_lines_whatever_the_reads() -> None:
    data = "line one\nlïne two\n\nlast".encode()
    reads = [data[i : i + 3] for i in range(0, len(data), 3)]
    pieces = list(text_chunks(iter(reads), piece_bytes=8))
    assert "\n".join(pieces).split("\n") == ["line one", "lïne two", "", "last"]
    assert len(pieces) > 1
    assert list(text_chunks(iter([b"a\n"]))) == ["a"]  # the last newline ends a line
    assert list(text_chunks(iter([b"a\n\n"]))) == ["a\n"]  # ... then one empty line
    assert list(text_chunks(iter([]))) == []


def test_an_unwritable_directory_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as caught:
        DirectoryOutputs(blocker / "kept")
    assert "followups.directory" in caught.value.user_text()


def test_s3_access_denied_says_which_permissions(clock: FakeClock) -> None:
    class Denied:
        def put_object(self, **_: object) -> None:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    with pytest.raises(StoreError) as caught:
        S3Outputs(Denied(), "bucket").put(kept_run("abc", clock), ["x"])
    assert "s3:PutObject" in caught.value.user_text() and "AccessDenied" in caught.value.user_text()
