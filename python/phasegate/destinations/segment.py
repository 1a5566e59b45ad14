"""Segment and RudderStack HTTP Tracking API `/v1/batch`: phase attributes as `identify`
traits, phase events as `track` calls, each with the record id as `messageId`. Segment drops a
repeated messageId; RudderStack only when the workspace enables dedup, which is off by default.

Neither can delete through this API (supports_delete=False): deleting a user is a separate
regulation request with a workspace-level token, a SUPPRESS_WITH_DELETE regulation through
Segment's Public API and a suppression-with-delete regulation through RudderStack's User
Suppression API (Enterprise plan). A delete record is rejected with the reason in
DELETE_UNSUPPORTED and nothing is sent for it. Sources:
https://www.twilio.com/docs/segment/privacy/user-deletion-and-suppression and
https://www.rudderstack.com/docs/api/user-suppression-api/."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from phasegate.destinations.base import DELETE_UNSUPPORTED, BatchResult, Capabilities, Record
from phasegate.destinations.http import (
    EngagementSettings,
    HttpClient,
    HttpDestination,
    RateWindow,
    RequestRejected,
    Unsendable,
    attributes_to_clear,
    chunk,
    encoded_within,
    event_properties,
    event_time,
    json_array,
    prepare,
    read_secret,
    result_for,
    send_bisecting,
    unique_records,
)
from phasegate.destinations.identity import contact_of, split_payload

MAX_MESSAGE_BYTES = 32_000

Pair = tuple[Record, bytes]  # the record and its message, encoded once


class SegmentSettings(EngagementSettings):
    type: Literal["segment"]
    region: Literal["us", "eu"] = Field(
        default="us", description="The workspace's region; the US host silently drops EU workspaces' data."
    )
    write_key_env: str = Field(
        default="SEGMENT_WRITE_KEY", description="Variable holding the source write key."
    )


class RudderStackSettings(EngagementSettings):
    type: Literal["rudderstack"]
    data_plane_url: str = Field(description="The data plane URL, e.g. https://acme.dataplane.rudderstack.com")
    write_key_env: str = Field(
        default="RUDDERSTACK_WRITE_KEY", description="Variable holding the source write key."
    )


class SegmentDestination(HttpDestination):
    type = "segment"
    capabilities = Capabilities(max_batch_records=2500, dedupes_by_record_id=True)
    default_rate_limit = (RateWindow(requests=1000, seconds=1),)
    max_request_bytes: ClassVar[int] = 500_000
    max_request_messages: ClassVar[int] = 2500  # more are answered 200 and dropped
    settings: SegmentSettings | RudderStackSettings

    def base_url(self) -> str:
        host = "events.eu1.segmentapis.com" if self.settings.region == "eu" else "api.segment.io"
        return self.settings.base_url or f"https://{host}"

    def make_client(self) -> HttpClient:
        key = read_secret(self.env, self.settings.write_key_env, self.type)
        return self.http_client(headers={"Content-Type": "application/json"}, secrets=[key], auth=(key, ""))

    def check(self) -> None:
        # nothing to send: an empty batch tells a refused write key from an accepted one
        response = self.client.send("POST", "/v1/batch", body={"batch": []})
        if response.status_code not in (200, 400):
            raise self.client.refuse(response)

    def _message(self, record: Record) -> bytes:
        if record.kind == "delete":
            raise Unsendable(DELETE_UNSUPPORTED[self.type])
        base = {"userId": record.key, "messageId": record.record_id}
        if record.kind == "event":
            message = {
                **base,
                "type": "track",
                "event": record.payload["event_name"],
                "properties": event_properties(record),
                "timestamp": event_time(record),
            }
        elif record.kind == "remove":
            message = {
                **base,
                "type": "identify",
                "traits": dict.fromkeys(attributes_to_clear(record, self.settings)),
            }
        else:
            contact = contact_of(record.payload, self.settings.default_phone_region)
            traits = split_payload(record.payload)
            if contact.email:
                traits["email"] = contact.email
            if contact.phone:
                traits["phone"] = contact.phone
            message = {**base, "type": "identify", "traits": traits}
        return encoded_within(message, MAX_MESSAGE_BYTES, "record")

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        ready, rejected = prepare(records, self._message)
        for group in chunk(
            ready,
            max_count=self.max_request_messages,
            max_bytes=self.max_request_bytes,
            size=_size,
            overhead=32,
        ):
            # a 400 means nothing of the request was taken, so halves can be resent
            refused = send_bisecting(group, self._send)
            rejected.update({r.record_id: f"{self.type}: {message}" for (r, _), message in refused})
        return result_for(records, rejected)

    def _send(self, group: list[Pair]) -> None:
        body = json_array(b'{"batch":', (message for _, message in group), b"}")
        response = self.client.send("POST", "/v1/batch", content=body)
        if response.status_code in (400, 413):
            raise RequestRejected(self.client.message(response))
        if response.status_code != 200:
            raise self.client.refuse(response)


class RudderStackDestination(SegmentDestination):
    type = "rudderstack"
    capabilities = Capabilities(max_batch_records=2500, dedupes_by_record_id=False)
    default_rate_limit = (RateWindow(requests=1000, seconds=1),)
    max_request_bytes = 4_000_000
    max_request_messages = 2500

    def base_url(self) -> str:
        return self.settings.base_url or self.settings.data_plane_url


def _size(pair: Pair) -> int:
    return len(pair[1])
