"""Google Customer Match through the Data Manager API: customers in the sync become members of
a user list, identified only by SHA-256 hashes (hex) of their normalised email and E.164 phone.
Adding a member twice is harmless. A remove needs the customer's identifiers, which today's
remove records do not carry, so such removes are rejected with a reason.

A delete removes the customer from the user list with `POST /v1/audienceMembers:remove`, the
same hashed identifiers as an add: a Customer Match list holds nothing else about the person,
so removal is the deletion here. A delete record carries the email and phone when the sync is
configured to; without either it is rejected with a reason. Removing a member who is not on the
list is no error. Source: https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/remove
(the shared contracts, section 7, name `remove` for the Google Ads API job only)."""

from __future__ import annotations

from typing import Any, Literal

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
    split_deletes,
    unique_records,
)
from phasegate.destinations.identity import contact_of, sha256_hex

MAX_MEMBERS = 10_000

Pair = tuple[Record, dict[str, Any]]


class GoogleAudienceSettings(HttpDestinationSettings):
    type: Literal["google_audience"]
    access_token_env: str = Field(
        default="GOOGLE_ACCESS_TOKEN",
        description="Variable holding an OAuth access token for the Data Manager API.",
    )
    operating_account_type: str = "GOOGLE_ADS"
    operating_account_id: str = Field(description="Customer id of the account that owns the user list.")
    login_account_id: str | None = Field(default=None, description="Manager account id, when one is used.")
    user_list_id: str = Field(description="The Customer Match user list (product destination id).")
    ad_user_data_consent: Literal["CONSENT_GRANTED", "CONSENT_DENIED"] | None = Field(
        default=None, description="Sent only when set: phasegate does not assume consent."
    )
    ad_personalization_consent: Literal["CONSENT_GRANTED", "CONSENT_DENIED"] | None = None
    default_phone_region: str | None = "US"


class GoogleAudienceDestination(HttpDestination):
    type = "google_audience"
    capabilities = Capabilities(
        max_batch_records=50_000,
        supports_remove=False,
        supports_events=False,
        dedupes_by_record_id=True,
        supports_delete=True,
    )
    default_base_url = "https://datamanager.googleapis.com"
    default_rate_limit = (RateWindow(requests=300, seconds=60),)
    settings: GoogleAudienceSettings

    def make_client(self) -> HttpClient:
        token = read_secret(self.env, self.settings.access_token_env, "google_audience")
        return self.http_client(
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, secrets=[token]
        )

    def _envelope(self) -> dict[str, Any]:
        s = self.settings
        account = {"accountType": s.operating_account_type, "accountId": s.operating_account_id}
        destination: dict[str, Any] = {"operatingAccount": account, "productDestinationId": s.user_list_id}
        if s.login_account_id:
            destination["loginAccount"] = {
                "accountType": s.operating_account_type,
                "accountId": s.login_account_id,
            }
        envelope: dict[str, Any] = {"destinations": [destination], "encoding": "HEX"}
        consent = {
            k: v
            for k, v in (
                ("adUserData", s.ad_user_data_consent),
                ("adPersonalization", s.ad_personalization_consent),
            )
            if v
        }
        if consent:
            envelope["consent"] = consent
        return envelope

    def check(self) -> None:
        # validateOnly touches nothing; an empty member list is refused (400) only once authorised
        body = {**self._envelope(), "audienceMembers": [], "validateOnly": True}
        response = self.client.send("POST", "/v1/audienceMembers:ingest", body=body)
        if response.status_code not in (200, 400):
            raise self.client.refuse(response)

    def _member(self, record: Record) -> dict[str, Any]:
        if record.kind == "event":
            raise Unsendable(
                "event: a Customer Match audience takes members, not events; set send_events: false"
            )
        contact = contact_of(record.payload, self.settings.default_phone_region)
        identifiers = []
        if contact.email:
            identifiers.append({"emailAddress": sha256_hex(contact.email)})
        if contact.phone:
            identifiers.append({"phoneNumber": sha256_hex(contact.phone)})
        if not identifiers:
            what = record.kind if record.kind in ("remove", "delete") else "record"
            raise Unsendable(f"{what}: no email or phone to identify the customer by")
        return {"userData": {"userIdentifiers": identifiers}}

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        to_send, deletes = split_deletes(records)
        ready, rejected = prepare(to_send + deletes, self._member)
        for action in ("ingest", "remove"):
            pairs = [p for p in ready if (p[0].kind in ("remove", "delete")) == (action == "remove")]
            for group in chunk(pairs, max_count=MAX_MEMBERS):
                refused = send_bisecting(group, lambda g, action=action: self._send(action, g))
                rejected.update({r.record_id: f"google_audience: {message}" for (r, _), message in refused})
        return result_for(records, rejected)

    def _send(self, action: str, group: list[Pair]) -> None:
        body = {**self._envelope(), "audienceMembers": [member for _, member in group]}
        response = self.client.send("POST", f"/v1/audienceMembers:{action}", body=body)
        if response.status_code == 400:
            # membership changes are idempotent, so resending halves is harmless
            raise RequestRejected(self.client.message(response))
        if response.status_code != 200:
            raise self.client.refuse(response)
