"""Fake Segment / RudderStack `/v1/batch`: Basic `writeKey:`, 32 KB per message, 500 KB and
2,500 messages per batch for Segment (a larger batch is answered 200 and dropped), 4,000 KB
(413) for RudderStack, messageId dedup (Segment; RudderStack only with dedup enabled), 429 with
Retry-After."""

from __future__ import annotations

import base64
import json

from .base import E164, EMAIL, FakePlatform, Reply, Request


class FakeSegment(FakePlatform):
    rate_windows = ((1000, 1.0),)
    max_batch_bytes = 500_000
    max_messages = 2500
    dedup = True

    def __init__(self, write_key: str, **kw):
        super().__init__(**kw)
        self.credentials = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self.profiles: dict[str, dict] = {}
        self.events: list[dict] = []
        self.dropped = 0
        self._message_ids: set[str] = set()

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == self.credentials

    def unauthorized(self, req: Request) -> Reply:
        return Reply(401, {"success": False, "message": "Invalid write key"})

    def oversize(self) -> Reply:
        return Reply(400, {"success": False, "message": "Batch too large"})

    def handle(self, req: Request) -> Reply:
        if (req.method, req.path) != ("POST", "/v1/batch"):
            return Reply(404, {"message": "not found"})
        if len(req.body) > self.max_batch_bytes:
            self.too_large()
            return self.oversize()
        try:
            batch = json.loads(req.body)["batch"]
        except (ValueError, KeyError):
            return Reply(400, {"success": False, "message": "Invalid JSON"})
        if any(len(json.dumps(m, separators=(",", ":")).encode()) > 32_000 for m in batch):
            self.too_large()
            return Reply(400, {"success": False, "message": "Message over 32 KB"})
        if any(m.get("userId") in self.reject_keys or not self._valid(m) for m in batch):
            return Reply(400, {"success": False, "message": "Invalid message in batch"})
        if len(batch) > self.max_messages:
            self.too_large()
            self.dropped += len(batch)
            return Reply(200, {"success": True})
        for message in batch:
            if self.dedup and message["messageId"] in self._message_ids:
                continue
            self._message_ids.add(message["messageId"])
            key = message["userId"]
            if message["type"] == "identify":
                profile = self.profiles.setdefault(key, {})
                for name, value in message["traits"].items():
                    if value is None:
                        profile.pop(name, None)
                    else:
                        profile[name] = value
            else:
                self.events.append(
                    {
                        "key": key,
                        "name": message["event"],
                        "id": message["messageId"],
                        **message["properties"],
                    }
                )
        return Reply(200, {"success": True})

    def _valid(self, message: dict) -> bool:
        traits = message.get("traits") or {}
        email_ok = not traits.get("email") or EMAIL.match(traits["email"])
        phone_ok = not traits.get("phone") or E164.match(traits["phone"])
        return bool(email_ok and phone_ok)


class FakeRudderStack(FakeSegment):
    max_batch_bytes = 4_000_000
    max_messages = 1_000_000
    dedup = False  # enableDedup is off by default

    def oversize(self) -> Reply:
        return Reply(413, b"Request size too large")
