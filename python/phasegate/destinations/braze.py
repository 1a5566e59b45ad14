"""Braze `/users/track`: phase attributes and phase events for users keyed by external_id.
Braze has no idempotency key, so a replayed event is stored twice.

Deletes go to `POST /users/delete` with `{"external_ids": [...]}`: at most 50 identifiers per
request and one identifier type per request, a key with the `users.delete` permission, and a
20,000 requests/minute limit shared with /users/alias/new, /users/identify and /users/merge
(not with /users/track). Braze answers `{"deleted": n, "message": "success"}` and queues the
deletion; an unknown external_id is no error, so a resent delete is harmless.
Source: https://www.braze.com/docs/api/endpoints/user_data/post_user_delete (not yet in the
shared contracts, section 1)."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import Field

from phasegate.destinations.base import BatchResult, Capabilities, Record
from phasegate.destinations.http import (
    EngagementSettings,
    HttpClient,
    HttpDestination,
    RateWindow,
    RequestRejected,
    attributes_to_clear,
    chunk,
    encode_json,
    event_properties,
    event_time,
    prepare,
    read_secret,
    result_for,
    send_bisecting,
    split_deletes,
    unique_records,
    within,
)
from phasegate.destinations.identity import contact_of, split_payload
from phasegate.errors import PermanentError

ArrayItem = tuple[str, dict[str, Any]]  # ("attributes" | "events", object)
DELETE = "/users/delete"
MAX_DELETE_IDS = 50
MAX_EXTERNAL_ID_BYTES = 987


class BrazeSettings(EngagementSettings):
    type: Literal["braze"]
    instance: str = Field(
        default="iad-01", description="The workspace's REST instance, e.g. iad-01 or fra-01 (EU)."
    )
    api_key_env: str = Field(
        default="BRAZE_API_KEY", description="Variable holding a REST key with users.track."
    )
    max_objects_per_request: int = Field(
        default=75, ge=1, le=75, description="Braze's limit counts attributes and events together."
    )
    max_request_bytes: int = Field(
        default=1_000_000, description="Braze documents no body cap; stay well below common proxies."
    )


class BrazeDestination(HttpDestination):
    type = "braze"
    capabilities = Capabilities(max_batch_records=1000, dedupes_by_record_id=False, supports_delete=True)
    default_rate_limit = (RateWindow(requests=3000, seconds=3),)
    # 75 objects per request and a high limit: the rate needs many requests in flight
    default_concurrency = 8
    settings: BrazeSettings

    def route_windows(self):
        return {DELETE: (RateWindow(requests=20_000, seconds=60),)}

    def base_url(self) -> str:
        if self.settings.base_url:
            return self.settings.base_url
        tld = "eu" if self.settings.instance.startswith("fra") else "com"
        return f"https://rest.{self.settings.instance}.braze.{tld}"

    def make_client(self) -> HttpClient:
        key = read_secret(self.env, self.settings.api_key_env, "braze")
        return self.http_client(
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            secrets=[key],
        )

    def check(self) -> None:
        # An empty track call is refused with 400 when the key is good, 401/403 when it is not.
        response = self.client.send("POST", "/users/track", body={})
        if response.status_code not in (200, 201, 400):
            raise self.client.refuse(response)

    def _item(self, record: Record) -> ArrayItem:
        base = {"external_id": record.key}
        if record.kind == "event":
            event = {**base, "name": record.payload["event_name"], "time": event_time(record)}
            return "events", within({**event, "properties": event_properties(record)}, 50_000, "event")
        if record.kind == "remove":
            return "attributes", {**base, **dict.fromkeys(attributes_to_clear(record, self.settings))}
        contact = contact_of(record.payload, self.settings.default_phone_region)
        obj = {**base, **split_payload(record.payload)}
        if contact.email:
            obj["email"] = contact.email
        if contact.phone:
            obj["phone"] = contact.phone
        return "attributes", within(obj, 100_000, "record")

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        to_send, deletes = split_deletes(records)
        ready, rejected = prepare(to_send, self._item)
        for group in chunk(
            ready,
            max_count=self.settings.max_objects_per_request,
            max_bytes=self.settings.max_request_bytes,
            size=lambda pair: len(encode_json(pair[1][1])),
            overhead=64,
        ):
            refused = send_bisecting(group, lambda g: rejected.update(self._send(g)))
            rejected.update({record.record_id: f"braze: {message}" for (record, _), message in refused})
        rejected.update(self._delete(deletes))
        return result_for(records, rejected)

    def _delete(self, deletes: list[Record]) -> dict[str, str]:
        rejected: dict[str, str] = {}
        ready: list[Record] = []
        for record in deletes:
            if not record.key or len(record.key.encode()) > MAX_EXTERNAL_ID_BYTES:
                rejected[record.record_id] = (
                    f"delete: external_id empty or over Braze's {MAX_EXTERNAL_ID_BYTES} bytes"
                )
            else:
                ready.append(record)
        for group in chunk(ready, max_count=MAX_DELETE_IDS):
            # deleting an id twice is harmless, so halves of a refused request can be resent
            refused = send_bisecting(group, self._send_delete)
            rejected.update({record.record_id: f"braze: {message}" for record, message in refused})
        return rejected

    def _send_delete(self, group: list[Record]) -> None:
        ids = list(dict.fromkeys(record.key for record in group))
        response = self.client.send("POST", DELETE, body={"external_ids": ids})
        if response.status_code in (401, 403):
            raise PermanentError(
                f"braze: HTTP {response.status_code} on {DELETE}: the REST key needs the users.delete "
                f"permission ({self.client.message(response)})"
            )
        if response.status_code in (400, 413):
            raise RequestRejected(self.client.message(response))
        if response.status_code not in (200, 201, 202):
            raise self.client.refuse(response)

    def _send(self, group: list[tuple[Record, ArrayItem]]) -> dict[str, str]:
        arrays: dict[str, list[Record]] = {"attributes": [], "events": []}
        body: dict[str, list[dict[str, Any]]] = {"attributes": [], "events": []}
        for record, (array, obj) in group:
            arrays[array].append(record)
            body[array].append(obj)
        response = self.client.send("POST", "/users/track", body={k: v for k, v in body.items() if v})
        if response.status_code in (400, 413):
            raise RequestRejected(self.client.message(response))
        if response.status_code not in (200, 201, 202):
            raise self.client.refuse(response)
        return self._partial_errors(response, arrays)

    def _partial_errors(self, response: httpx.Response, arrays: dict[str, list[Record]]) -> dict[str, str]:
        """Objects Braze refused inside a successful call, located by input_array and index. An
        error without a location cannot be pinned down: every object of that array is reported,
        since Braze may have dropped any of them."""
        try:
            errors = (response.json() or {}).get("errors") or []
        except ValueError:
            errors = []
        rejected: dict[str, str] = {}
        for error in errors:
            error = error if isinstance(error, dict) else {"type": str(error)}
            reason = f"braze: {self.client.redact(str(error.get('type') or error))[:300]}"
            targets = arrays.get(error.get("input_array", ""), [])
            index = error.get("index")
            if isinstance(index, int) and 0 <= index < len(targets):
                rejected[targets[index].record_id] = reason
            else:
                arrays_hit = targets or [r for rs in arrays.values() for r in rs]
                for record in arrays_hit:
                    rejected.setdefault(record.record_id, reason + " (not attributed to one object)")
        return rejected
