"""Outgoing webhooks signed per Standard Webhooks v1: one POST per record, `webhook-id` set to
the record id (receivers deduplicate on it, so a resend is recognised), `webhook-timestamp`,
and `webhook-signature` with the HMAC-SHA256 of the `whsec_` secret. A 410 means the receiver
retired the endpoint; 429, 502 and 504 mean slow down.

A delete is sent as a signed `customer.deleted` event carrying the customer key and the
identifiers the sync has; erasing the customer is the receiver's duty, and it acknowledges with
a 2xx like any other message (an unknown customer included)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field
from standardwebhooks import Webhook

from phasegate.destinations.base import BatchResult, Capabilities, Record
from phasegate.destinations.http import (
    HttpClient,
    HttpDestination,
    HttpDestinationSettings,
    RateWindow,
    encode_json,
    read_secret,
    result_for,
    unique_records,
)
from phasegate.errors import PermanentError


class WebhookSettings(HttpDestinationSettings):
    type: Literal["webhook"]
    url: str = Field(description="The receiving endpoint.")
    secret_env: str = Field(
        default="WEBHOOK_SECRET", description="Variable holding the whsec_... signing secret."
    )
    timeout_s: float = Field(default=15.0, gt=0, description="Standard Webhooks suggests 15-30 s.")


class WebhookDestination(HttpDestination):
    type = "webhook"
    # the receiver's duty under Standard Webhooks is to dedupe on webhook-id, our record id
    capabilities = Capabilities(max_batch_records=1000, dedupes_by_record_id=True, supports_delete=True)
    default_rate_limit = (RateWindow(requests=50, seconds=1),)  # be gentle with the receiver
    settings: WebhookSettings

    def base_url(self) -> str:
        return ""  # requests go to the full URL: joining paths would add a trailing slash

    def target(self) -> str:
        return self.settings.base_url or self.settings.url

    def _signer(self) -> tuple[Webhook, str]:
        secret = read_secret(self.env, self.settings.secret_env, "webhook")
        try:
            return Webhook(secret), secret
        except Exception:  # noqa: BLE001 - any decoding failure means the same to the user
            raise PermanentError(
                f"webhook: {self.settings.secret_env} is not a Standard Webhooks secret (whsec_ + base64)"
            ) from None

    def make_client(self) -> HttpClient:
        _, secret = self._signer()
        return self.http_client(
            headers={"Content-Type": "application/json"},
            secrets=[secret, secret.removeprefix("whsec_")],
        )

    def check(self) -> None:
        # a missing or malformed secret is all that can be known without sending a message
        self._signer()

    def message(self, sync_name: str, record: Record, sent_at: datetime) -> dict[str, Any]:
        return {
            "type": "customer.deleted" if record.kind == "delete" else f"phasegate.{record.kind}",
            "timestamp": sent_at.isoformat().replace("+00:00", "Z"),
            "data": {
                "sync": sync_name,
                "record_id": record.record_id,
                "kind": record.kind,
                "key": record.key,
                "payload": record.payload,
            },
        }

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        records = unique_records(records)
        signer, _ = self._signer()
        rejected: dict[str, str] = {}
        for record in records:
            sent_at = datetime.now(timezone.utc)
            body = encode_json(self.message(sync_name, record, sent_at))
            headers = {
                "webhook-id": record.record_id,
                "webhook-timestamp": str(int(sent_at.timestamp())),
                "webhook-signature": signer.sign(record.record_id, sent_at, body.decode()),
            }
            response = self.client.send("POST", self.target(), content=body, headers=headers)
            if 200 <= response.status_code < 300:
                continue
            if response.status_code in (401, 403, 404, 410) or response.is_redirect:
                raise self.client.refuse(response)
            rejected[record.record_id] = (
                f"webhook: HTTP {response.status_code}: {self.client.message(response)}"
            )
        return result_for(records, rejected)
