"""HubSpot contacts batch upsert, keyed by a unique property (email by default). Upserting on
a unique property is naturally repeatable; contacts carry no phase events here.

Deletes use the GDPR delete, `POST /crm/v3/objects/contacts/gdpr-delete` with
`{"objectId": <email or key>, "idProperty": <id_property>}` (204, one contact per request, the
app's usual rate limit), rather than `POST /crm/v3/objects/contacts/batch/archive`: archive takes
HubSpot record ids, which phasegate does not hold (each would need a lookup first), and an
archived contact is restorable for 90 days, which is not an erasure. The GDPR delete removes the
contact and its associated content for good, and identified by email it blocklists an address
that matches no contact, so the customer cannot come back through a later upsert. A 404 (no
contact has that custom id property value) counts as deleted already.
Sources: https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact
and .../contacts/batch/delete-contacts (not yet in the shared contracts, section 5)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

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
    prepare,
    read_secret,
    result_for,
    send_bisecting,
    split_deletes,
    unique_records,
    within,
)
from phasegate.destinations.identity import contact_of, split_payload

MAX_INPUTS = 100
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
GDPR_DELETE = "/crm/v3/objects/contacts/gdpr-delete"

Pair = tuple[Record, dict[str, Any]]


class HubSpotSettings(EngagementSettings):
    type: Literal["hubspot"]
    access_token_env: str = Field(
        default="HUBSPOT_ACCESS_TOKEN", description="Variable holding a private app or OAuth access token."
    )
    id_property: str = Field(
        default="email",
        description="Unique contact property to upsert on: email, or a unique custom property "
        "holding the customer key.",
    )


class HubSpotDestination(HttpDestination):
    type = "hubspot"
    capabilities = Capabilities(
        max_batch_records=1000, supports_events=False, dedupes_by_record_id=True, supports_delete=True
    )
    default_base_url = "https://api.hubapi.com"
    # per app per 10 s: 100 on Free/Starter, 190 on Pro/Enterprise; assume the smallest
    default_rate_limit = (RateWindow(requests=100, seconds=10),)
    settings: HubSpotSettings

    def make_client(self) -> HttpClient:
        token = read_secret(self.env, self.settings.access_token_env, "hubspot")
        return self.http_client(
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, secrets=[token]
        )

    def check(self) -> None:
        response = self.client.send("GET", "/crm/v3/objects/contacts", params={"limit": "1"})
        if response.status_code != 200:
            raise self.client.refuse(response)

    def _input(self, record: Record) -> dict[str, Any]:
        if record.kind == "event":
            raise Unsendable(
                "event: the HubSpot destination writes contact properties only; set send_events: false"
            )
        contact = contact_of(record.payload, self.settings.default_phone_region)
        if self.settings.id_property == "email":
            if not contact.email:
                raise Unsendable("email: required, HubSpot upserts contacts by email (id_property)")
            id_value = contact.email
        else:
            id_value = record.key
        if record.kind == "remove":
            # HubSpot clears a property set to the empty string
            properties = dict.fromkeys(attributes_to_clear(record, self.settings), "")
        else:
            properties = split_payload(record.payload)
            if contact.email:
                properties["email"] = contact.email
            if contact.phone:
                properties["phone"] = contact.phone
        return within(
            {"id": id_value, "idProperty": self.settings.id_property, "properties": properties},
            100_000,
            "record",
        )

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        to_send, deletes = split_deletes(records)
        ready, rejected = prepare(to_send, self._input)
        for group in chunk(ready, max_count=MAX_INPUTS):
            # upserts on a unique property are repeatable: resending halves is harmless
            refused = send_bisecting(group, lambda g: rejected.update(self._send(g)))
            rejected.update({r.record_id: f"hubspot: {message}" for (r, _), message in refused})
        ready_deletes, local = prepare(deletes, self._gdpr_input)
        rejected.update(local)
        for record, body in ready_deletes:
            reason = self._gdpr_delete(body)
            if reason:
                rejected[record.record_id] = reason
        return result_for(records, rejected)

    def _gdpr_input(self, record: Record) -> dict[str, str]:
        if self.settings.id_property != "email":
            return {"objectId": record.key, "idProperty": self.settings.id_property}
        contact = contact_of(record.payload, self.settings.default_phone_region)
        if not contact.email:
            raise Unsendable("delete: email required, HubSpot identifies contacts by email (id_property)")
        return {"objectId": contact.email, "idProperty": "email"}

    def _gdpr_delete(self, body: dict[str, str]) -> str | None:
        response = self.client.send("POST", GDPR_DELETE, body=body)
        if response.status_code in (200, 204, 404):
            return None
        if response.status_code in (400, 422):
            return f"hubspot: {self.client.message(response)}"
        raise self.client.refuse(response)

    def _send(self, group: list[Pair]) -> dict[str, str]:
        response = self.client.send("POST", UPSERT, body={"inputs": [item for _, item in group]})
        if response.status_code in (400, 413, 422):
            raise RequestRejected(self.client.message(response))
        if response.status_code not in (200, 201, 207):
            raise self.client.refuse(response)
        by_id: dict[str, list[Record]] = {}
        for record, item in group:
            by_id.setdefault(str(item["id"]), []).append(record)
        rejected: dict[str, str] = {}
        for error in (response.json() or {}).get("errors") or []:
            ids = (error.get("context") or {}).get("ids") or []
            hit = [r for i in ids for r in by_id.get(str(i), [])]
            if not hit:
                # an error we cannot place: isolate it by resending halves
                raise RequestRejected(self.client.redact(str(error.get("message", error)))[:300])
            for record in hit:
                rejected[record.record_id] = f"hubspot: {self.client.redact(str(error.get('message')))[:300]}"
        return rejected
