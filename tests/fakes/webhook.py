"""Fake Standard Webhooks receiver: verifies webhook-signature with the shared secret (401
otherwise), deduplicates on webhook-id, answers 422 for customers it refuses and can be told
to retire the endpoint (410). A `customer.deleted` message erases the customer, known or not."""

from __future__ import annotations

import json

from standardwebhooks import Webhook, WebhookVerificationError

from .base import FakePlatform, Reply, Request


class FakeWebhook(FakePlatform):
    path = "/hooks/phasegate"

    def __init__(self, secret: str, **kw):
        super().__init__(**kw)
        self.verifier = Webhook(secret)
        self.retired = False
        self.messages: dict[str, dict] = {}  # by webhook-id

    @property
    def profiles(self) -> dict[str, dict]:
        """Each customer's last upserted payload, gone once removed or deleted, replayed in
        arrival order."""
        state: dict[str, dict] = {}
        for m in self.messages.values():
            data = m["data"]
            if data["kind"] == "upsert":
                state[data["key"]] = dict(data["payload"])
            elif data["kind"] == "remove" or m["type"] == "customer.deleted":
                state.pop(data["key"], None)
        return state

    @property
    def events(self) -> list[dict]:
        return [
            {
                "key": m["data"]["key"],
                "name": m["data"]["payload"]["event_name"],
                "id": wid,
                **m["data"]["payload"],
            }
            for wid, m in self.messages.items()
            if m["data"]["kind"] == "event"
        ]

    def authorized(self, req: Request) -> bool:
        try:
            self.verifier.verify(req.body, req.headers)
        except WebhookVerificationError:
            return False
        return True

    def handle(self, req: Request) -> Reply:
        if req.path != self.path:
            return Reply(404, {"message": "no such hook"})
        if self.retired:
            return Reply(410, {"message": "endpoint retired"})
        message = json.loads(req.body)
        if message["data"]["key"] in self.reject_keys:
            return Reply(422, {"message": "customer unknown to the receiver"})
        self.messages.setdefault(req.headers["webhook-id"], message)
        return Reply(204, b"")
