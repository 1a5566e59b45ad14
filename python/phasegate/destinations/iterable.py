"""Iterable: phase attributes through `users/bulkUpdate` (merging, keyed by userId) and phase
events through `events/trackBulk` with the record id as event `id`, so a resent event updates
the stored one instead of adding another. Refused users come back in the response lists.

Deletes use `DELETE /api/users/byUserId/{userId}` (Iterable's "Delete user by userId":
asynchronous, deletes every user sharing that userId; 3 requests/s per project), one request
per customer: Iterable has no bulk delete. An unknown userId is answered 400 BadParams "User
does not exist" (or with `failedUpdates.notFoundUserIds`), which counts as deleted already.
`POST /api/users/forget` (GDPR forget, which also blocks the email from coming back) takes an
email, which the customer key is not, so it is not used.
Sources: Iterable's Swagger as generated in idihyaabde/iterable-php `docs/Api/UsersApi.md`;
the unknown-user reply from rudderlabs/rudder-transformer's Iterable deleteUsers test data
(not yet in the shared contracts, section 4)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

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
    event_unix,
    prepare,
    read_secret,
    result_for,
    send_bisecting,
    split_deletes,
    unique_records,
    within,
)
from phasegate.destinations.identity import contact_of, split_payload

MAX_REQUEST_BYTES = 4_000_000
MAX_USERS = 1_000
MAX_EVENTS = 1_000
DELETE_BY_USER_ID = "/api/users/byUserId"

Pair = tuple[Record, dict[str, Any]]


class IterableSettings(EngagementSettings):
    type: Literal["iterable"]
    region: Literal["us", "eu"] = Field(default="us", description="The project's data center.")
    api_key_env: str = Field(default="ITERABLE_API_KEY", description="Variable holding a server-side key.")


class IterableDestination(HttpDestination):
    type = "iterable"
    capabilities = Capabilities(max_batch_records=1000, dedupes_by_record_id=True, supports_delete=True)
    # bulkUpdate: 10/s in Iterable's Swagger, 5/s per key by other accounts; take the lower
    default_rate_limit = (RateWindow(requests=5, seconds=1),)
    settings: IterableSettings

    def route_windows(self):
        return {DELETE_BY_USER_ID: (RateWindow(requests=3, seconds=1),)}

    def base_url(self) -> str:
        host = "api.eu.iterable.com" if self.settings.region == "eu" else "api.iterable.com"
        return self.settings.base_url or f"https://{host}"

    def make_client(self) -> HttpClient:
        key = read_secret(self.env, self.settings.api_key_env, "iterable")
        return self.http_client(headers={"Api-Key": key, "Content-Type": "application/json"}, secrets=[key])

    def check(self) -> None:
        response = self.client.send("GET", "/api/lists")
        if response.status_code != 200:
            raise self.client.refuse(response)

    def _user(self, record: Record) -> dict[str, Any]:
        user: dict[str, Any] = {"userId": record.key, "preferUserId": True, "mergeNestedObjects": True}
        if record.kind == "remove":
            return {**user, "dataFields": dict.fromkeys(attributes_to_clear(record, self.settings))}
        contact = contact_of(record.payload, self.settings.default_phone_region)
        fields = split_payload(record.payload)
        if contact.phone:
            fields["phoneNumber"] = contact.phone
        if contact.email:
            user["email"] = contact.email
        return within({**user, "dataFields": fields}, 100_000, "record")

    def _event(self, record: Record) -> dict[str, Any]:
        event = {
            "userId": record.key,
            "eventName": record.payload["event_name"],
            "id": record.record_id,
            "createdAt": event_unix(record),
            "dataFields": event_properties(record),
        }
        return within(event, 100_000, "event")

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        to_send, deletes = split_deletes(records)
        rejected: dict[str, str] = {}
        for kinds, build, path, array, max_count in (
            (("upsert", "remove"), self._user, "/api/users/bulkUpdate", "users", MAX_USERS),
            (("event",), self._event, "/api/events/trackBulk", "events", MAX_EVENTS),
        ):
            ready, local = prepare([r for r in to_send if r.kind in kinds], build)
            rejected.update(local)
            for group in chunk(
                ready, max_count=max_count, max_bytes=MAX_REQUEST_BYTES, size=_size, overhead=32
            ):
                # users merge and events are keyed by id: resending halves is harmless
                refused = send_bisecting(
                    group, lambda g, path=path, array=array: rejected.update(self._send(path, array, g))
                )
                rejected.update({r.record_id: f"iterable: {message}" for (r, _), message in refused})
        for record in deletes:
            reason = self._delete(record)
            if reason:
                rejected[record.record_id] = reason
        return result_for(records, rejected)

    def _delete(self, record: Record) -> str | None:
        if not record.key:
            return "delete: empty userId"
        response = self.client.send("DELETE", f"{DELETE_BY_USER_ID}/{quote(record.key, safe='')}")
        if response.status_code == 200 or _unknown_user(response, record.key):
            return None
        if response.status_code == 400:
            return f"iterable: {self.client.message(response)}"
        raise self.client.refuse(response)

    def _send(self, path: str, array: str, group: list[Pair]) -> dict[str, str]:
        response = self.client.send("POST", path, body={array: [item for _, item in group]})
        if response.status_code in (400, 413):
            raise RequestRejected(self.client.message(response))
        if response.status_code != 200:
            raise self.client.refuse(response)
        return _refused_in(response.json() or {}, group)


def _refused_in(body: dict[str, Any], group: list[Pair]) -> dict[str, str]:
    """Map the response's lists of refused emails, user ids and event names to records."""
    lists: list[tuple[str, str, list[Any]]] = [
        ("email", "invalid email", body.get("invalidEmails") or []),
        ("userId", "invalid userId", body.get("invalidUserIds") or []),
        ("eventName", "event name not allowed", body.get("disallowedEventNames") or []),
    ]
    for reason, values in (body.get("failedUpdates") or {}).items():
        field = "email" if reason.endswith("Emails") else "userId"
        lists.append((field, f"failed update ({reason})", values or []))
    rejected: dict[str, str] = {}
    for field, reason, values in lists:
        wanted = set(map(str, values))
        for record, item in group:
            if str(item.get(field)) in wanted:
                rejected.setdefault(record.record_id, f"iterable: {field}: {reason}")
    return rejected


def _unknown_user(response: httpx.Response, user_id: str) -> bool:
    """Iterable's answer to deleting a userId it does not hold: nothing left to delete."""
    if response.status_code == 404:
        return True
    if response.status_code != 400:
        return False
    try:
        body = response.json() or {}
    except ValueError:
        return False
    if str(body.get("msg", "")).startswith("User does not exist"):
        return True
    failed = body.get("failedUpdates") or (body.get("params") or {}).get("failedUpdates") or {}
    return user_id in map(str, failed.get("notFoundUserIds") or [])


def _size(pair: Pair) -> int:
    return len(encode_json(pair[1]))
