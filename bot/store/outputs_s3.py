"""Kept outputs in S3 (`bot.store.outputs.KeptOutputs`), shared by every replica.

``<prefix>runs/<request id>/run.json``, ``<prefix>runs/<request id>/<n>.txt`` and
``<prefix>threads/<key>`` (the thread's latest request id). Every object is written with SSE-S3
(``ServerSideEncryption: AES256``, which wins over a bucket default). Expiry is read from ``run.json``; `prune` deletes
expired runs, and a bucket lifecycle rule on the prefix (infra/) is the backstop that needs no bot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bot.errors import StoreError
from bot.store.outputs import KeptRun, text_chunks, thread_key, valid_request_id

_CHUNK = 64 * 1024
# A run with parts but no run.json younger than this is being written, not abandoned.
_WRITING_S = 300.0


def _s3_error(exc: Exception, what: str) -> StoreError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", exc.__class__.__name__)
    fix = ("Allow the bot's role s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on the bucket."
           if code in ("AccessDenied", "403") else "Check followups.s3_bucket and the bot's network path to S3.")
    return StoreError(f"Cannot {what} in S3 ({code}).", fix=fix)


class S3Outputs:
    def __init__(self, client: Any, bucket: str, prefix: str = "ecs-exec-bot/outputs/", *,
                 clock: Callable[[], float] = time.time) -> None:
        self._s3 = client
        self._bucket = bucket
        self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._clock = clock

    def _run_key(self, request_id: str, name: str) -> str:
        if not valid_request_id(request_id):
            raise StoreError("That is not a request id the bot gave.", fix="Use the id shown under the result.")
        return f"{self._prefix}runs/{request_id}/{name}"

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type,
                            ServerSideEncryption="AES256")

    def put(self, run: KeptRun, texts: Sequence[str]) -> None:
        try:
            for n, text in enumerate(texts):
                self._put(self._run_key(run.request_id, f"{n}.txt"), text.encode(), "text/plain; charset=utf-8")
            # run.json last: a reader that finds it finds every part.
            self._put(self._run_key(run.request_id, "run.json"), run.to_json().encode(), "application/json")
            self._put(f"{self._prefix}threads/{thread_key(run.channel, run.thread_ts)}", run.request_id.encode(),
                      "text/plain")
        except StoreError:
            raise
        except Exception as exc:  # botocore's ClientError / connection errors
            raise _s3_error(exc, f"keep the output of request {run.request_id}") from None

    def _read(self, key: str) -> bytes | None:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
            return bytes(body.read())
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _s3_error(exc, "read a kept output") from None

    def get(self, request_id: str) -> KeptRun | None:
        data = self._read(self._run_key(request_id, "run.json"))
        if data is None:
            return None
        try:
            run = KeptRun.from_json(data)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"The kept output of request {request_id} is unreadable ({exc}).") from None
        return run if run.expires_at > self._clock() else None

    def chunks(self, request_id: str, part: int) -> Iterator[str]:
        key = self._run_key(request_id, f"{int(part)}.txt")
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        except Exception as exc:
            raise _s3_error(exc, f"read the kept output of request {request_id}") from None
        try:
            yield from text_chunks(iter(lambda: body.read(_CHUNK), b""))
        finally:
            body.close()

    def latest_in_thread(self, channel: str, thread_ts: str) -> str | None:
        data = self._read(f"{self._prefix}threads/{thread_key(channel, thread_ts)}")
        request_id = data.decode(errors="replace").strip() if data else ""
        return request_id if valid_request_id(request_id) else None

    def prune(self) -> int:
        now = self._clock()
        pruned = 0
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=f"{self._prefix}runs/", Delimiter="/"
            )
            run_prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", ())]
            for run_prefix in run_prefixes:
                request_id = run_prefix.rstrip("/").rsplit("/", 1)[-1]
                if valid_request_id(request_id) and self.get(request_id) is not None:
                    continue
                objects = [o for page in self._s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self._bucket, Prefix=run_prefix) for o in page.get("Contents", ())]
                described = any(o["Key"].endswith("/run.json") for o in objects)
                if not described and objects and now - max(o["LastModified"].timestamp() for o in objects) < _WRITING_S:
                    continue  # parts of a run another replica is still writing (run.json comes last)
                keys = [{"Key": o["Key"]} for o in objects]
                for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
                    self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys[start:start + 1000]})
                pruned += 1
        except StoreError:
            raise
        except Exception as exc:
            raise _s3_error(exc, "prune kept outputs") from None
        return pruned
