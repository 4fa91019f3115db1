"""DynamoDB store: one table shared by every replica; every compare-and-set is a conditional write.

Single-table layout (documented in docs/store.md; `table_definition` is the source of truth):

=========================  ===========================  ======================  ==========================
item                       pk / sk                      gsi1 (pk / sk)          other GSIs
=========================  ===========================  ======================  ==========================
idempotency claim          ``CLAIM#<key>`` / ``-``      –                       –
approval record            ``APPROVAL#<id>`` / ``-``    ``STATE#<state>`` /     –
                                                        ``<created>#<id>``
run slot (lease)           ``SLOT#<scope>`` / ``<n>``   –                       –
replica heartbeat          ``REPLICA`` / ``<id>``       –                       –
audit event                ``AUDIT#<YYYY-MM-DD>`` /     ``USER#<actor>`` /      gsi2 ``SERVICE#<s>``,
                           ``<at>#<event id>``          ``<at>#<event id>``     gsi3 ``REQUEST#<id>``
=========================  ===========================  ======================  ==========================

Votes live in a map attribute of the approval item so "not voted yet, still pending, not expired" and the
write are one conditional ``UpdateItem``. Expiring items carry ``ttl`` (epoch seconds) for DynamoDB TTL;
TTL deletes lazily, so every read and condition still compares ``expires_at`` with the clock.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bot.aws import describe_setup_error
from bot.errors import BotError, StoreError
from bot.store.base import (
    AuditEvent,
    AuditQuery,
    RunRecord,
    RunState,
    Transition,
    Vote,
    check_transition,
)

TTL_ATTRIBUTE = "ttl"
GSI_USER_OR_STATE = "gsi1"
GSI_SERVICE = "gsi2"
GSI_REQUEST = "gsi3"
# Approval items stay readable this long after they expire, for "what happened to my request?".
APPROVAL_ITEM_RETENTION_S = 30 * 86400
_DAY_S = 86400


def table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for the bot's table (also rendered into docs/store.md and infra)."""
    keys = [("pk", "sk"), ("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk"), ("gsi3pk", "gsi3sk")]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for pair in keys for a in pair],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, (hash_key, range_key) in zip(
                (GSI_USER_OR_STATE, GSI_SERVICE, GSI_REQUEST), keys[1:], strict=True
            )
        ],
    }


def create_table(client: Any, table_name: str, *, wait: bool = True) -> None:
    """Create the table with its GSIs and enable TTL on ``ttl``. Used by tests, the demo and infra docs."""
    try:
        client.create_table(**table_definition(table_name))
        if wait:
            client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})
        client.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
    except Exception as exc:  # botocore raises several unrelated families; all mean the same to the caller
        raise _store_error(table_name, exc) from exc


def _store_error(table: str, exc: BaseException) -> BotError:
    setup = describe_setup_error(exc, action=f"DynamoDB table {table}")
    if setup is not None:  # no region, unknown profile, no or expired credentials: the set-up, not the table
        return setup
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    what = f"{code}: {exc}" if code else str(exc)
    return StoreError(
        f"The DynamoDB table {table} cannot be used ({what}).",
        fix="Check ECS_EXEC_BOT_DYNAMODB_TABLE and the region, that the table exists (see docs/store.md), "
        "and that the role may use it (infra/bot/iam.tf; pruning needs Scan and BatchWriteItem: an operator's role).",
    )


def _n(value: float | int) -> dict[str, str]:
    return {"N": repr(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _ts_key(at: float) -> str:
    # Fixed width so string order is time order (good until the year 2286).
    return f"{at:017.6f}"


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


class DynamoStore:
    """`Store` on one DynamoDB table. ``client`` is a boto3 DynamoDB *client* (not resource)."""

    # Audit records expire through DynamoDB TTL (``append_audit(retain_seconds=...)``); pruning by hand
    # (`audit --prune-older-than`, Scan + BatchWriteItem) is an operator action the bot's role cannot do.
    audit_expires_natively = True

    def __init__(self, table_name: str, client: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.table = table_name
        self._client = client
        self._clock = clock

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def _calls(self) -> Iterator[None]:
        try:
            yield
        except BotError:
            raise
        except Exception as exc:
            raise _store_error(self.table, exc) from exc

    def _conditional(
        self, op: str, *, applied: Callable[[Mapping[str, Any]], bool] | None = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Run a conditional write; None means the condition failed (someone else won).

        botocore retries a write whose response was lost (timeout, 5xx) although the first attempt may
        have been applied; the retry then fails its condition against *our own* write. ``applied`` spots
        that in the item DynamoDB returns with the failure (a nonce we wrote), so a won CAS is not
        reported as lost — which would leave an approval that nobody runs."""
        if applied is not None:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        with self._calls():
            try:
                return getattr(self._client, op)(TableName=self.table, **kwargs)
            except self._client.exceptions.ConditionalCheckFailedException as exc:
                old = exc.response.get("Item")
                return {"Attributes": old} if applied is not None and old and applied(old) else None

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self._paged("query", kwargs)

    def _scan(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self._paged("scan", kwargs)

    def _paged(self, op: str, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        with self._calls():
            while True:
                page = getattr(self._client, op)(TableName=self.table, **kwargs)
                yield from page.get("Items", [])
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- idempotency -----------------------------------------------------------------------------
    def claim(self, key: str, ttl_seconds: float) -> bool:
        now = self._clock()
        nonce = uuid.uuid4().hex
        item = {"pk": _s(f"CLAIM#{key}"), "sk": _s("-"), "expires_at": _n(now + ttl_seconds),
                TTL_ATTRIBUTE: _n(int(now + ttl_seconds) + 1), "write_id": _s(nonce)}  # fmt: skip
        return (
            self._conditional(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": _n(now)},
                applied=lambda old: _opt_s(old, "write_id") == nonce,
            )
            is not None
        )

    # -- approvals -------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> bool:
        now = self._clock()
        item: dict[str, Any] = {
            "pk": _s(f"APPROVAL#{record.request_id}"),
            "sk": _s("-"),
            "gsi1pk": _s(f"STATE#{record.state.value}"),
            "gsi1sk": _s(f"{_ts_key(record.created_at)}#{record.request_id}"),
            "request_id": _s(record.request_id),
            "requester": _s(record.requester),
            "channel": _s(record.channel),
            "service": _s(record.service),
            "environment": _s(record.environment),
            "command": _s(record.command),
            "request_hash": _s(record.request_hash),
            "reason": _s(record.reason),
            "rule": _s(record.rule),
            "approver_users": _s(json.dumps(list(record.approver_users))),
            "approver_groups": _s(json.dumps(list(record.approver_groups))),
            "min_approvals": _n(record.min_approvals),
            "allow_self_approval": {"BOOL": record.allow_self_approval},
            "created_at": _n(record.created_at),
            "expires_at": _n(record.expires_at),
            "state": _s(record.state.value),
            "updated_at": _n(record.updated_at or now),
            "params": _s(json.dumps(dict(record.params))),
            "sessions": {"L": [_s(s) for s in record.sessions]},
            "votes": {"M": {v.approver: _vote_value(v) for v in record.votes}},
            TTL_ATTRIBUTE: _n(int(record.expires_at + APPROVAL_ITEM_RETENTION_S)),
            "write_id": _s(nonce := uuid.uuid4().hex),
        }
        optional = {"message_ts": record.message_ts, "decided_by": record.decided_by,
                    "state_reason": record.state_reason, "owner": record.owner}  # fmt: skip
        item.update({k: _s(v) for k, v in optional.items() if v is not None})
        if record.run_deadline is not None:
            item["run_deadline"] = _n(record.run_deadline)
        return (
            self._conditional(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                applied=lambda old: _opt_s(old, "write_id") == nonce,
            )
            is not None
        )

    def get_run(self, request_id: str) -> RunRecord | None:
        with self._calls():
            resp = self._client.get_item(
                TableName=self.table,
                Key={"pk": _s(f"APPROVAL#{request_id}"), "sk": _s("-")},
                ConsistentRead=True,  # a click right after the post must see the record
            )
        item = resp.get("Item")
        return _approval_from_item(item) if item else None

    def set_message_ts(self, request_id: str, message_ts: str) -> None:
        self._conditional(
            "update_item",
            Key={"pk": _s(f"APPROVAL#{request_id}"), "sk": _s("-")},
            UpdateExpression="SET message_ts = :ts, updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":ts": _s(message_ts), ":now": _n(self._clock())},
        )

    def add_session(self, request_id: str, session_id: str) -> None:
        # list_append is not idempotent, but a retried append only repeats an id: TerminateSession twice
        # on one session is harmless (the second answers "already over").
        self._conditional(
            "update_item",
            Key={"pk": _s(f"APPROVAL#{request_id}"), "sk": _s("-")},
            UpdateExpression="SET sessions = list_append(if_not_exists(sessions, :empty), :s), updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":s": {"L": [_s(session_id)]}, ":empty": {"L": []}, ":now": _n(self._clock())},
        )

    def add_vote(self, request_id: str, vote: Vote) -> RunRecord | None:
        now = self._clock()
        nonce = uuid.uuid4().hex

        def applied(old: Mapping[str, Any]) -> bool:
            mine = old.get("votes", {}).get("M", {}).get(vote.approver, {}).get("M", {})
            return _opt_s(mine, "nonce") == nonce

        resp = self._conditional(
            "update_item",
            applied=applied,
            Key={"pk": _s(f"APPROVAL#{request_id}"), "sk": _s("-")},
            UpdateExpression="SET votes.#approver = :vote, updated_at = :now",
            ConditionExpression=(
                "#state = :pending AND expires_at > :now AND attribute_not_exists(votes.#approver)"
            ),
            ExpressionAttributeNames={"#approver": vote.approver, "#state": "state"},
            ExpressionAttributeValues={
                ":vote": _vote_value(vote, nonce),
                ":now": _n(now),
                ":pending": _s(RunState.PENDING.value),
            },
            ReturnValues="ALL_NEW",
        )
        return _approval_from_item(resp["Attributes"]) if resp else None

    def transition(
        self,
        request_id: str,
        expected: RunState,
        new: RunState,
        change: Transition | None = None,
        *,
        require_unexpired: bool = False,
        expected_owner: str | None = None,
    ) -> RunRecord | None:
        check_transition(expected, new)
        change = change or Transition()
        now = self._clock()
        # "state" and "owner" are DynamoDB reserved words, so every attribute goes through a #name.
        names = {"#state": "state", "#gsi1pk": "gsi1pk", "#updated_at": "updated_at"}
        values: dict[str, Any] = {
            ":new": _s(new.value),
            ":gsi": _s(f"STATE#{new.value}"),
            ":now": _n(now),
            ":expected": _s(expected.value),
        }
        # Each state is entered at most once (the machine has no cycles), so "cas_<state>" keeps the
        # nonce of the write that entered it: a retried winner recognises itself (see `_conditional`).
        nonce = uuid.uuid4().hex
        names["#cas"] = f"cas_{new.value}"
        values[":nonce"] = _s(nonce)
        sets = ["#state = :new", "#gsi1pk = :gsi", "#updated_at = :now", "#cas = :nonce"]
        optional: dict[str, dict[str, str] | None] = {
            "decided_by": _s(change.decided_by) if change.decided_by is not None else None,
            "state_reason": _s(change.state_reason) if change.state_reason is not None else None,
            "owner": _s(change.owner) if change.owner is not None else None,
            "run_deadline": _n(change.run_deadline) if change.run_deadline is not None else None,
        }
        for name, value in optional.items():
            if value is not None:
                names[f"#{name}"] = name
                values[f":{name}"] = value
                sets.append(f"#{name} = :{name}")
        condition = "#state = :expected"
        if require_unexpired:
            names["#expires_at"] = "expires_at"
            condition += " AND #expires_at > :now"
        if expected_owner is not None:
            names["#owner"] = "owner"
            values[":expected_owner"] = _s(expected_owner)
            condition += " AND #owner = :expected_owner"
        resp = self._conditional(
            "update_item",
            applied=lambda old: _opt_s(old, f"cas_{new.value}") == nonce,
            Key={"pk": _s(f"APPROVAL#{request_id}"), "sk": _s("-")},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return _approval_from_item(resp["Attributes"]) if resp else None

    def list_runs(self, state: RunState, limit: int = 100) -> list[RunRecord]:
        out: list[RunRecord] = []
        # GSIs are eventually consistent: re-read each record and keep it only if still in that state.
        for item in self._query(
            IndexName=GSI_USER_OR_STATE,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": _s(f"STATE#{state.value}")},
        ):
            record = self.get_run(item["request_id"]["S"])
            if record is not None and record.state is state:
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    # -- run slots -------------------------------------------------------------------------------
    # A scope has `limit` numbered lease items; taking one is a conditional put on a free (absent or
    # lapsed) number, so two replicas can never hold the same number.
    def acquire_slot(self, scope: str, limit: int, holder: str, ttl_seconds: float) -> bool:
        now = self._clock()
        leases = {
            item["sk"]["S"]: item
            for item in self._query(
                KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": _s(f"SLOT#{scope}")},
                ConsistentRead=True,
            )
        }  # fmt: skip
        mine = [sk for sk, item in leases.items() if item["holder"]["S"] == holder]
        candidates = mine[:1] or [
            f"{n:05d}"
            for n in range(limit)
            if f"{n:05d}" not in leases or float(leases[f"{n:05d}"]["expires_at"]["N"]) <= now
        ]
        for sk in candidates:
            written = self._conditional(
                "put_item",
                Item={"pk": _s(f"SLOT#{scope}"), "sk": _s(sk), "holder": _s(holder),
                      "expires_at": _n(now + ttl_seconds), TTL_ATTRIBUTE: _n(int(now + ttl_seconds) + 1)},
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now OR holder = :holder",
                ExpressionAttributeValues={":now": _n(now), ":holder": _s(holder)},
            )  # fmt: skip
            if written is not None:
                return True
        return False

    def release_slot(self, scope: str, holder: str) -> None:
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            FilterExpression="holder = :holder",
            ExpressionAttributeValues={":pk": _s(f"SLOT#{scope}"), ":holder": _s(holder)},
            ConsistentRead=True,
        ):
            self._conditional(
                "delete_item",
                Key={"pk": item["pk"], "sk": item["sk"]},
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": _s(holder)},
            )

    def active_slots(self, scope: str) -> int:
        items = self._query(
            KeyConditionExpression="pk = :pk",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={":pk": _s(f"SLOT#{scope}"), ":now": _n(self._clock())},
            ConsistentRead=True,
        )
        return sum(1 for _ in items)

    # -- replicas --------------------------------------------------------------------------------
    def heartbeat(self, replica_id: str, ttl_seconds: float) -> None:
        expires = self._clock() + ttl_seconds
        with self._calls():
            self._client.put_item(
                TableName=self.table,
                Item={"pk": _s("REPLICA"), "sk": _s(replica_id), "expires_at": _n(expires),
                      TTL_ATTRIBUTE: _n(int(expires) + 1)},
            )  # fmt: skip

    def live_replicas(self) -> set[str]:
        items = self._query(
            KeyConditionExpression="pk = :pk",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={":pk": _s("REPLICA"), ":now": _n(self._clock())},
            ConsistentRead=True,
        )
        return {item["sk"]["S"] for item in items}

    # -- audit -----------------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent, retain_seconds: float | None = None) -> None:
        order = f"{_ts_key(event.at)}#{event.event_id}"
        item: dict[str, Any] = {
            "pk": _s(f"AUDIT#{_day(event.at)}"),
            "sk": _s(order),
            "gsi3pk": _s(f"REQUEST#{event.request_id}"),
            "gsi3sk": _s(order),
            "event_id": _s(event.event_id),
            "request_id": _s(event.request_id),
            "kind": _s(event.kind),
            "at": _n(event.at),
            "details": _s(json.dumps(dict(event.details))),
        }
        if event.user:
            item["gsi1pk"], item["gsi1sk"] = _s(f"USER#{event.user}"), _s(order)
        if event.service:
            item["gsi2pk"], item["gsi2sk"] = _s(f"SERVICE#{event.service}"), _s(order)
        for name in ("user", "requester", "channel", "service", "environment", "command"):
            value = getattr(event, name)
            if value is not None:
                item[name] = _s(value)
        if retain_seconds is not None:
            item[TTL_ATTRIBUTE] = _n(int(event.at + retain_seconds))
        with self._calls():
            self._client.put_item(TableName=self.table, Item=item)

    def query_audit(self, query: AuditQuery) -> list[AuditEvent]:
        now = self._clock()
        since = query.since if query.since is not None else 0.0
        until = query.until if query.until is not None else now + _DAY_S
        if query.since is None and _index_for(query) is None:
            # No time bound and no index to narrow it: there is no partition to start from, so read all
            # audit items (a rare admin query; the CLI always passes --since).
            items = self._scan(
                FilterExpression="begins_with(pk, :audit)", ExpressionAttributeValues={":audit": _s("AUDIT#")}
            )
            events = [e for e in map(_event_from_item, items) if e.at < until]
            events.sort(key=lambda e: (e.at, e.event_id), reverse=True)
            return events[: query.limit]
        # Sort keys are "<ts>#<id>": a key at exactly `until` sorts after _ts_key(until), so it is excluded.
        span = {":lo": _s(_ts_key(since)), ":hi": _s(_ts_key(until))}
        filters, extra = _audit_filters(query, skip_index=_index_for(query))
        found: list[AuditEvent] = []
        for index, pk_name, sk_name, pk_value in self._audit_sources(query, since, until):
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": f"{pk_name} = :pk AND {sk_name} BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": {":pk": _s(pk_value), **span, **extra},
                "ScanIndexForward": False,
            }
            if index:
                kwargs["IndexName"] = index
            if filters:
                kwargs["FilterExpression"] = filters
                # DynamoDB rejects names the expression does not use, so pass only those that appear.
                kwargs["ExpressionAttributeNames"] = {
                    f"#{a}": a for a in ("user", "service") if f"#{a}" in filters
                }
            for item in self._query(**kwargs):
                event = _event_from_item(item)
                if since <= event.at < until:
                    found.append(event)
                if index is None and len(found) >= query.limit:
                    # Day partitions are visited newest first, so the first `limit` hits are the newest.
                    return found
        found.sort(key=lambda e: (e.at, e.event_id), reverse=True)
        return found[: query.limit]

    def _audit_sources(
        self, query: AuditQuery, since: float, until: float
    ) -> Iterator[tuple[str | None, str, str, str]]:
        """(index, pk attribute, sk attribute, pk value) to query, most selective index first."""
        if query.request_id is not None:
            yield GSI_REQUEST, "gsi3pk", "gsi3sk", f"REQUEST#{query.request_id}"
        elif query.users:
            for user in dict.fromkeys(query.users):
                yield GSI_USER_OR_STATE, "gsi1pk", "gsi1sk", f"USER#{user}"
        elif query.service is not None:
            yield GSI_SERVICE, "gsi2pk", "gsi2sk", f"SERVICE#{query.service}"
        else:
            day = min(until, self._clock() + _DAY_S)
            while day >= since - _DAY_S:
                yield None, "pk", "sk", f"AUDIT#{_day(day)}"
                day -= _DAY_S

    def prune_audit(self, before: float) -> int:
        keys = [
            {"pk": item["pk"], "sk": item["sk"]}
            for item in self._scan(
                FilterExpression="begins_with(pk, :audit) AND #at < :before",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":audit": _s("AUDIT#"), ":before": _n(before)},
                ProjectionExpression="pk, sk",
            )
        ]
        with self._calls():
            for start in range(0, len(keys), 25):  # BatchWriteItem takes at most 25 requests
                self._batch_delete(keys[start : start + 25])
        return len(keys)

    def _batch_delete(self, keys: list[dict[str, Any]]) -> None:
        requests: list[dict[str, Any]] = [{"DeleteRequest": {"Key": k}} for k in keys]
        for _ in range(8):
            resp = self._client.batch_write_item(RequestItems={self.table: requests})
            requests = resp.get("UnprocessedItems", {}).get(self.table, [])
            if not requests:
                return
            time.sleep(0.05)  # throttled: back off briefly and resend only what was not processed
        raise StoreError(
            f"The DynamoDB table {self.table} kept throttling while pruning audit records.",
            fix="Run `ecs-exec-bot audit --prune` again later or raise the table's write capacity.",
        )


def _index_for(query: AuditQuery) -> str | None:
    if query.request_id is not None:
        return GSI_REQUEST
    if query.users:
        return GSI_USER_OR_STATE
    if query.service is not None:
        return GSI_SERVICE
    return None


def _audit_filters(query: AuditQuery, *, skip_index: str | None) -> tuple[str, dict[str, Any]]:
    """Filters for the conditions the chosen index does not already apply."""
    parts: list[str] = []
    values: dict[str, Any] = {}
    if query.users and skip_index != GSI_USER_OR_STATE:
        values.update({f":u{i}": _s(user) for i, user in enumerate(query.users)})
        parts.append(f"#user IN ({', '.join(f':u{i}' for i in range(len(query.users)))})")
    if query.service is not None and skip_index != GSI_SERVICE:
        parts.append("#service = :service")
        values[":service"] = _s(query.service)
    return " AND ".join(parts), values


def _vote_value(vote: Vote, nonce: str = "") -> dict[str, Any]:
    return {"M": {"at": _n(vote.at), "break_glass": {"BOOL": vote.break_glass}, "nonce": _s(nonce)}}



def _opt_s(item: Mapping[str, Any], name: str) -> str | None:
    return item[name]["S"] if name in item else None


def _approval_from_item(item: Mapping[str, Any]) -> RunRecord:
    votes = sorted(
        (
            Vote(approver=name, at=float(v["M"]["at"]["N"]), break_glass=v["M"]["break_glass"]["BOOL"])
            for name, v in item.get("votes", {}).get("M", {}).items()
        ),
        key=lambda v: (v.at, v.approver),
    )
    return RunRecord(
        request_id=item["request_id"]["S"],
        requester=item["requester"]["S"],
        channel=item["channel"]["S"],
        service=item["service"]["S"],
        environment=item["environment"]["S"],
        command=item["command"]["S"],
        request_hash=item["request_hash"]["S"],
        reason=item["reason"]["S"],
        rule=item["rule"]["S"],
        approver_users=tuple(json.loads(item["approver_users"]["S"])),
        approver_groups=tuple(json.loads(item["approver_groups"]["S"])),
        min_approvals=int(item["min_approvals"]["N"]),
        allow_self_approval=item["allow_self_approval"]["BOOL"],
        created_at=float(item["created_at"]["N"]),
        expires_at=float(item["expires_at"]["N"]),
        state=RunState(item["state"]["S"]),
        message_ts=_opt_s(item, "message_ts"),
        votes=tuple(votes),
        decided_by=_opt_s(item, "decided_by"),
        state_reason=_opt_s(item, "state_reason"),
        owner=_opt_s(item, "owner"),
        run_deadline=float(item["run_deadline"]["N"]) if "run_deadline" in item else None,
        updated_at=float(item["updated_at"]["N"]),
        params=json.loads(item["params"]["S"]),
        sessions=tuple(s["S"] for s in item.get("sessions", {}).get("L", [])),
    )


def _event_from_item(item: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(
        event_id=item["event_id"]["S"],
        request_id=item["request_id"]["S"],
        kind=item["kind"]["S"],
        at=float(item["at"]["N"]),
        user=_opt_s(item, "user"),
        requester=_opt_s(item, "requester"),
        channel=_opt_s(item, "channel"),
        service=_opt_s(item, "service"),
        environment=_opt_s(item, "environment"),
        command=_opt_s(item, "command"),
        details=json.loads(item["details"]["S"]),
    )
