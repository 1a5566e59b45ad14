"""Meta Custom Audiences: customers in the sync are added to an audience (POST on its `users`
edge) and removed when they leave (DELETE on the same edge). Rows carry only SHA-256 hashes:
of the customer key (EXTERN_ID, so a remove can match without contact data), the normalised
email and the phone as digits. Adding or removing a row twice is harmless.

A delete removes the customer's row from the audience (DELETE on the `users` edge), the same as a
remove: the audience holds only these hashes, so removal is the deletion here, and it needs no
contact data since EXTERN_ID matches. Removing a row that is not in the audience is no error.
Source: https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users
(shared contracts, section 7)."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
from pydantic import Field

from phasegate.destinations.base import BatchResult, Capabilities, Record
from phasegate.destinations.http import (
    HttpClient,
    HttpDestination,
    HttpDestinationSettings,
    RateWindow,
    RequestRejected,
    Unsendable,
    chunk,
    prepare,
    read_secret,
    result_for,
    send_bisecting,
    server_wait,
    split_deletes,
    unique_records,
)
from phasegate.destinations.identity import Contact, InvalidIdentity, contact_of, meta_phone, sha256_hex
from phasegate.errors import PermanentError

MAX_ROWS = 10_000
SCHEMA = ["EXTERN_ID", "EMAIL_SHA256", "PHONE_SHA256"]
THROTTLE_CODES = {4, 17, 32, 613, 80003, 80004}  # app, user, page, custom-audience, business throttles
AUTH_CODES = {102, 190, 200, 10}

Pair = tuple[Record, list[str]]


class MetaAudienceSettings(HttpDestinationSettings):
    type: Literal["meta_audience"]
    access_token_env: str = Field(
        default="META_ACCESS_TOKEN", description="Variable holding a system-user token."
    )
    audience_id: str = Field(description="The custom audience to add customers to.")
    api_version: str = "v25.0"
    default_phone_region: str | None = "US"


def graph_error(response: httpx.Response) -> dict[str, Any]:
    try:
        error = (response.json() or {}).get("error")
    except ValueError:
        return {}
    return error if isinstance(error, dict) else {}


def is_throttled(response: httpx.Response) -> bool:
    return response.status_code == 429 or graph_error(response).get("code") in THROTTLE_CODES


def throttle_wait(response: httpx.Response) -> float | None:
    """X-Business-Use-Case-Usage says, per business, how many minutes until access returns."""
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", "{}"))
    except ValueError:
        usage = {}
    minutes = [
        entry.get("estimated_time_to_regain_access") or 0
        for entries in (usage.values() if isinstance(usage, dict) else [])
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    ]
    if any(minutes):
        return max(minutes) * 60.0
    return server_wait(response)


class MetaAudienceDestination(HttpDestination):
    type = "meta_audience"
    capabilities = Capabilities(
        max_batch_records=50_000, supports_events=False, dedupes_by_record_id=True, supports_delete=True
    )
    default_base_url = "https://graph.facebook.com"
    default_rate_limit = (RateWindow(requests=100, seconds=60),)
    settings: MetaAudienceSettings

    def make_client(self) -> HttpClient:
        token = read_secret(self.env, self.settings.access_token_env, "meta_audience")
        return self.http_client(
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            secrets=[token],
            throttled=is_throttled,
            wait_hint=throttle_wait,
        )

    def _edge(self) -> str:
        return f"/{self.settings.api_version}/{self.settings.audience_id}"

    def check(self) -> None:
        response = self.client.send("GET", self._edge(), params={"fields": "id"})
        if response.status_code != 200:
            raise self._refuse(response)

    def _refuse(self, response: httpx.Response) -> PermanentError:
        error = graph_error(response)
        code = f" (code {error.get('code')}/{error.get('error_subcode')})" if error else ""
        return PermanentError(
            f"meta_audience: HTTP {response.status_code}: {self.client.message(response)}{code}"
        )

    def _row(self, record: Record) -> list[str]:
        if record.kind == "event":
            raise Unsendable("event: a custom audience takes members, not events; set send_events: false")
        try:
            contact = contact_of(record.payload, self.settings.default_phone_region)
        except InvalidIdentity:
            if record.kind != "delete":
                raise
            # EXTERN_ID alone matches the row: a malformed identifier must not block an erasure
            contact = Contact()
        email = sha256_hex(contact.email) if contact.email else ""
        phone = sha256_hex(meta_phone(contact.phone)) if contact.phone else ""
        if record.kind == "upsert" and not (email or phone):
            raise Unsendable("record: no email or phone to match the customer on")
        return [sha256_hex(record.key), email, phone]

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        to_send, deletes = split_deletes(records)
        ready, rejected = prepare(to_send + deletes, self._row)
        for method in ("POST", "DELETE"):
            pairs = [p for p in ready if (p[0].kind in ("remove", "delete")) == (method == "DELETE")]
            for group in chunk(pairs, max_count=MAX_ROWS):
                refused = send_bisecting(
                    group, lambda g, method=method: rejected.update(self._send(method, g))
                )
                rejected.update({r.record_id: f"meta_audience: {message}" for (r, _), message in refused})
        return result_for(records, rejected)

    def _send(self, method: str, group: list[Pair]) -> dict[str, str]:
        body = {"payload": {"schema": SCHEMA, "data": [row for _, row in group]}}
        response = self.client.send(method, f"{self._edge()}/users", body=body)
        error = graph_error(response)
        if response.status_code in (401, 403) or error.get("code") in AUTH_CODES:
            raise self._refuse(response)
        if response.status_code == 400 and not (
            error.get("code") == 100 and error.get("error_subcode") == 1713230
        ):
            # adds and removes are idempotent, so resending halves is harmless
            raise RequestRejected(self.client.message(response))
        if response.status_code != 200:
            raise self._refuse(response)
        return self._invalid_rows(response.json() or {}, group)

    def _invalid_rows(self, body: dict[str, Any], group: list[Pair]) -> dict[str, str]:
        """Meta reports invalid rows by sample value; a row whose hash is sampled is rejected."""
        samples = body.get("invalid_entry_samples") or {}
        if isinstance(samples, dict):
            values = set(samples) | {str(v) for v in samples.values()}
        else:
            values = set(map(str, samples))
        return {
            record.record_id: "meta_audience: row reported invalid by Meta"
            for record, row in group
            if values & {v for v in row if v}
        }
