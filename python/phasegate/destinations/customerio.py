"""Customer.io Track API v2 `/api/v2/batch`: identify people by id with their phase
attributes, and send phase events with a ULID `id`, which Customer.io processes only once.

A delete is the same batch's person action `delete`
(`{"type":"person","action":"delete","identifiers":{"id":"c1"}}`), which removes the person and
all their data; deleting a person who does not exist changes nothing and is no error. It can
share a request with identifies and events, and travels after them.
Source: https://docs.customer.io/integrations/api/track/tag/track_v2/ (action table; the shared
contracts list the action in section 2). Customer.io's `suppress` action would also stop the id
from being re-added; phasegate leaves that choice to the workspace."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from ulid import ULID

from phasegate.destinations.base import BatchResult, Capabilities, Record
from phasegate.destinations.http import (
    EngagementSettings,
    HttpClient,
    HttpDestination,
    RateWindow,
    RequestRejected,
    Unsendable,
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
from phasegate.errors import PermanentError

MAX_BATCH_BYTES = 500_000
MAX_NAME_BYTES = 150  # ids and attribute names
MAX_VALUE_BYTES = 1_000
MAX_ATTRIBUTES = 300
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000


class CustomerIoSettings(EngagementSettings):
    type: Literal["customerio"]
    region: Literal["us", "eu"] = Field(
        default="us", description="The account's data center; a US account fails on the EU host."
    )
    site_id_env: str = "CUSTOMERIO_SITE_ID"
    api_key_env: str = Field(default="CUSTOMERIO_API_KEY", description="Variable holding the Track API key.")


def event_ulid(record: Record) -> str:
    """A resend must carry the same id. The time part is the event's day, so the id sorts and
    reads sensibly; the rest comes from the record id."""
    millis = event_unix(record) * 1000
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + bytes.fromhex(record.record_id)[:10]))


def _attributes_ok(attributes: dict[str, Any]) -> dict[str, Any]:
    if len(attributes) > MAX_ATTRIBUTES:
        raise Unsendable(f"record: {len(attributes)} attributes, over Customer.io's {MAX_ATTRIBUTES}")
    for name, value in attributes.items():
        if len(name.encode()) > MAX_NAME_BYTES:
            raise Unsendable(f"{name}: attribute name over Customer.io's {MAX_NAME_BYTES} bytes")
        if value is not None and len(str(value).encode()) > MAX_VALUE_BYTES:
            raise Unsendable(f"{name}: value over Customer.io's {MAX_VALUE_BYTES} bytes")
    return attributes


class CustomerIoDestination(HttpDestination):
    type = "customerio"
    capabilities = Capabilities(max_batch_records=1000, dedupes_by_record_id=True, supports_delete=True)
    default_rate_limit = (RateWindow(requests=100, seconds=1),)
    settings: CustomerIoSettings

    def base_url(self) -> str:
        host = "track-eu.customer.io" if self.settings.region == "eu" else "track.customer.io"
        return self.settings.base_url or f"https://{host}"

    def make_client(self) -> HttpClient:
        site = read_secret(self.env, self.settings.site_id_env, "customerio")
        key = read_secret(self.env, self.settings.api_key_env, "customerio")
        return self.http_client(
            headers={"Content-Type": "application/json"}, secrets=[site, key], auth=(site, key)
        )

    def check(self) -> None:
        response = self.client.send("GET", "/api/v1/accounts/region")
        if response.status_code != 200:
            raise self.client.refuse(response)
        center = str((response.json() or {}).get("data_center", "")).lower()
        if center and center != self.settings.region:
            raise PermanentError(
                f"customerio: the account is in the {center.upper()} data center; set region: {center}"
            )

    def _item(self, record: Record) -> dict[str, Any]:
        if len(record.key.encode()) > MAX_NAME_BYTES:
            raise Unsendable(f"key: customer id over Customer.io's {MAX_NAME_BYTES} bytes")
        person = {"type": "person", "identifiers": {"id": record.key}}
        if record.kind == "delete":
            return {**person, "action": "delete"}
        if record.kind == "event":
            name = str(record.payload["event_name"])
            if len(name.encode()) > MAX_EVENT_NAME_BYTES:
                raise Unsendable(f"event_name: over Customer.io's {MAX_EVENT_NAME_BYTES} bytes")
            data = within(event_properties(record), MAX_EVENT_DATA_BYTES, "event data")
            return {
                **person,
                "action": "event",
                "id": event_ulid(record),
                "name": name,
                "timestamp": event_unix(record),
                "attributes": data,
            }
        if record.kind == "remove":
            # Customer.io removes an attribute sent with an empty value
            return {
                **person,
                "action": "identify",
                "attributes": dict.fromkeys(attributes_to_clear(record, self.settings), ""),
            }
        contact = contact_of(record.payload, self.settings.default_phone_region)
        attributes = split_payload(record.payload)
        if contact.email:
            attributes["email"] = contact.email
        if contact.phone:
            attributes["phone"] = contact.phone
        return {**person, "action": "identify", "attributes": _attributes_ok(attributes)}

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        to_send, deletes = split_deletes(records)
        ready, rejected = prepare(to_send + deletes, self._item)
        for group in chunk(ready, max_bytes=MAX_BATCH_BYTES, size=_size, overhead=16):
            # identifies are idempotent, events carry their id and deleting twice is harmless,
            # so resending halves is safe
            refused = send_bisecting(group, self._send)
            rejected.update({record.record_id: f"customerio: {message}" for (record, _), message in refused})
        return result_for(records, rejected)

    def _send(self, group: list[tuple[Record, dict[str, Any]]]) -> None:
        response = self.client.send("POST", "/api/v2/batch", body={"batch": [item for _, item in group]})
        if response.status_code == 200:
            return
        if response.status_code in (207, 400, 413):
            # 207 lists what was wrong but not which object; bisect until it stands alone
            raise RequestRejected(self.client.message(response))
        raise self.client.refuse(response)


def _size(pair: tuple[Record, dict[str, Any]]) -> int:
    return len(encode_json(pair[1]))
