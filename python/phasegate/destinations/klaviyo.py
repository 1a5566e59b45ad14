"""Klaviyo: phase attributes through profile bulk import jobs (waited on, so per-profile import
errors become rejections), phase events through event bulk create jobs with `unique_id`, and
removes through the profile import endpoint, whose `unset` is the only way to clear a property.

Deletes use the Data Privacy API, `POST /api/data-privacy-deletion-jobs` (202, asynchronous;
scope `data-privacy:write`; burst 3/s, steady 60/min). A job names exactly one profile
identifier, `id`, `email` or `phone_number` (two are an error), and deletes every profile
matching it, so each delete is its own request. Klaviyo cannot delete by external_id, so the
profile ids carrying the customer key are first looked up with
`GET /api/profiles?filter=equals(external_id,"<key>")` (burst 75/s, steady 700/min); when none
exists the record's email, else its phone, is used, and with neither there is nothing to erase.
What a job for an unknown profile answers is not documented: a 404 is taken as already erased.
Source: https://developers.klaviyo.com/en/reference/request_profile_deletion and
klaviyo/openapi `openapi/stable/apis/request_profile_deletion.json` (not yet in the shared
contracts, section 3)."""

from __future__ import annotations

import json
import time
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
from phasegate.destinations.identity import InvalidIdentity, contact_of, split_payload
from phasegate.errors import TransientError

MAX_REQUEST_BYTES = 5_000_000
MAX_PROFILES = 10_000
MAX_PROFILE_BYTES = 100_000
MAX_EVENTS = 1_000
MAX_STRING_BYTES = 100_000
DELETION_JOBS = "/api/data-privacy-deletion-jobs"
PROFILES = "/api/profiles"

Pair = tuple[Record, dict[str, Any]]


class KlaviyoSettings(EngagementSettings):
    type: Literal["klaviyo"]
    api_key_env: str = Field(default="KLAVIYO_API_KEY", description="Variable holding a private API key.")
    revision: str = Field(default="2024-10-15", description="API revision sent in the revision header.")
    import_wait_s: float = Field(
        default=600.0,
        gt=0,
        description="How long to wait for a profile import job to finish before the batch is "
        "given up as transient (resending a profile import is harmless).",
    )
    import_poll_s: float = Field(default=2.0, gt=0)


class KlaviyoDestination(HttpDestination):
    type = "klaviyo"
    capabilities = Capabilities(max_batch_records=10_000, dedupes_by_record_id=True, supports_delete=True)
    default_base_url = "https://a.klaviyo.com"
    # the bulk endpoints' documented limits: 10/s burst, 150/min steady
    default_rate_limit = (RateWindow(requests=10, seconds=1), RateWindow(requests=150, seconds=60))
    settings: KlaviyoSettings

    def route_windows(self):
        return {
            DELETION_JOBS: (RateWindow(requests=3, seconds=1), RateWindow(requests=60, seconds=60)),
            PROFILES: (RateWindow(requests=75, seconds=1), RateWindow(requests=700, seconds=60)),
        }

    def make_client(self) -> HttpClient:
        key = read_secret(self.env, self.settings.api_key_env, "klaviyo")
        headers = {
            "Authorization": f"Klaviyo-API-Key {key}",
            "revision": self.settings.revision,
            "Content-Type": "application/vnd.api+json",
            "Accept": "application/vnd.api+json",
        }
        return self.http_client(headers=headers, secrets=[key])

    def check(self) -> None:
        response = self.client.send("GET", "/api/profile-bulk-import-jobs", params={"page[size]": "1"})
        if response.status_code != 200:
            raise self.client.refuse(response)

    # -- wire items ------------------------------------------------------------------------
    def _profile(self, record: Record) -> dict[str, Any]:
        contact = contact_of(record.payload, self.settings.default_phone_region)
        attributes: dict[str, Any] = {"external_id": record.key, "properties": split_payload(record.payload)}
        if contact.email:
            attributes["email"] = contact.email
        if contact.phone:
            attributes["phone_number"] = contact.phone
        return within({"type": "profile", "attributes": attributes}, MAX_PROFILE_BYTES, "record")

    def _event(self, record: Record) -> dict[str, Any]:
        name = str(record.payload["event_name"])
        if len(name) >= 128:
            raise Unsendable("event_name: 128 characters or more, over Klaviyo's limit")
        event = {
            "properties": event_properties(record),
            "time": event_time(record),
            "unique_id": record.record_id,
            "metric": {"data": {"type": "metric", "attributes": {"name": name}}},
        }
        return within(
            {
                "type": "event-bulk-create",
                "attributes": {
                    "profile": {"data": {"type": "profile", "attributes": {"external_id": record.key}}},
                    "events": {"data": [{"type": "event", "attributes": event}]},
                },
            },
            MAX_STRING_BYTES,
            "event",
        )

    # -- sending ---------------------------------------------------------------------------
    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        to_send, deletes = split_deletes(records)
        rejected: dict[str, str] = {}
        for kind, build, send, max_count in (
            ("upsert", self._profile, self._import_profiles, MAX_PROFILES),
            ("event", self._event, self._create_events, MAX_EVENTS),
        ):
            ready, local = prepare([r for r in to_send if r.kind == kind], build)
            rejected.update(local)
            for group in chunk(
                ready, max_count=max_count, max_bytes=MAX_REQUEST_BYTES, size=_size, overhead=256
            ):
                refused = send_bisecting(group, lambda g, send=send: rejected.update(send(g)))
                rejected.update({r.record_id: f"klaviyo: {message}" for (r, _), message in refused})
        for record in to_send:
            if record.kind == "remove":
                reason = self._unset(record)
                if reason:
                    rejected[record.record_id] = reason
        for record in deletes:
            reason = self._delete(record)
            if reason:
                rejected[record.record_id] = reason
        return result_for(records, rejected)

    def _delete(self, record: Record) -> str | None:
        try:
            targets: list[dict[str, Any]] = [
                {"type": "profile", "id": profile_id, "attributes": {}}
                for profile_id in self._profile_ids(record.key)
            ]
            if not targets:
                contact = contact_of(record.payload, self.settings.default_phone_region)
                if contact.email:
                    targets = [{"type": "profile", "attributes": {"email": contact.email}}]
                elif contact.phone:
                    targets = [{"type": "profile", "attributes": {"phone_number": contact.phone}}]
            for target in targets:  # one identifier per job: Klaviyo refuses two
                body = {
                    "data": {
                        "type": "data-privacy-deletion-job",
                        "attributes": {"profile": {"data": target}},
                    }
                }
                response = self.client.send("POST", DELETION_JOBS, body=body)
                if response.status_code != 404:  # already erased
                    self._expect(response, (200, 202, 204))
        except InvalidIdentity as exc:
            return str(exc)
        except RequestRejected as exc:
            return f"klaviyo: {exc}"
        return None

    def _profile_ids(self, key: str) -> list[str]:
        # json.dumps quotes the key and escapes any quote inside it
        params = {"filter": f"equals(external_id,{json.dumps(key)})", "fields[profile]": "external_id"}
        response = self.client.send("GET", PROFILES, params=params)
        self._expect(response, (200,))
        return [str(p["id"]) for p in (response.json() or {}).get("data") or [] if p.get("id")]

    def _import_profiles(self, group: list[Pair]) -> dict[str, str]:
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": [profile for _, profile in group]}},
            }
        }
        response = self.client.send("POST", "/api/profile-bulk-import-jobs", body=body)
        self._expect(response, (200, 201, 202))
        job = response.json()["data"]["id"]
        self._wait_for(job)
        by_key = {record.key: record for record, _ in group}
        rejected: dict[str, str] = {}
        for error in self._import_errors(job):
            attributes = error.get("attributes", {})
            original = attributes.get("original_payload") or {}
            record = by_key.get(str(original.get("external_id")))
            message = attributes.get("detail") or attributes.get("title") or "import error"
            if record is not None:
                rejected[record.record_id] = f"klaviyo: {self.client.redact(str(message))[:300]}"
        return rejected

    def _wait_for(self, job: str) -> None:
        deadline = time.monotonic() + self.settings.import_wait_s
        while True:
            response = self.client.send("GET", f"/api/profile-bulk-import-jobs/{job}")
            self._expect(response, (200,))
            status = response.json()["data"]["attributes"]["status"]
            if status == "complete":
                return
            if status == "cancelled" or time.monotonic() > deadline:
                raise TransientError(
                    f"klaviyo: profile import job {job} is {status}; the batch will be resent"
                )
            time.sleep(self.settings.import_poll_s)

    def _import_errors(self, job: str) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        url: str | None = f"/api/profile-bulk-import-jobs/{job}/import-errors"
        while url:
            response = self.client.send("GET", url)
            self._expect(response, (200,))
            page = response.json()
            errors += page.get("data") or []
            url = (page.get("links") or {}).get("next")
        return errors

    def _create_events(self, group: list[Pair]) -> dict[str, str]:
        body = {
            "data": {
                "type": "event-bulk-create-job",
                "attributes": {"events-bulk-create": {"data": [item for _, item in group]}},
            }
        }
        self._expect(self.client.send("POST", "/api/event-bulk-create-jobs", body=body), (200, 202))
        return {}

    def _unset(self, record: Record) -> str | None:
        try:
            names = attributes_to_clear(record, self.settings)
        except Unsendable as exc:
            return str(exc)
        body = {
            "data": {
                "type": "profile",
                "attributes": {"external_id": record.key},
                "meta": {"patch_properties": {"unset": names}},
            }
        }
        try:
            self._expect(self.client.send("POST", "/api/profile-import", body=body), (200, 201))
        except RequestRejected as exc:
            return f"klaviyo: {exc}"
        return None

    def _expect(self, response, ok: tuple[int, ...]) -> None:
        if response.status_code in ok:
            return
        if response.status_code in (400, 413, 422):
            raise RequestRejected(self.client.message(response))
        raise self.client.refuse(response)


def _size(pair: Pair) -> int:
    return len(encode_json(pair[1]))
