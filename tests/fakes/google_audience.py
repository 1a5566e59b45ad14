"""Fake Data Manager API: Bearer token, audienceMembers:ingest / :remove with HEX-encoded
SHA-256 identifiers, 10,000 members and 10 identifiers per member, validateOnly, and
429 RESOURCE_EXHAUSTED over 300 requests a minute."""

from __future__ import annotations

import itertools

from .base import SHA256_HEX, FakePlatform, Reply, Request


def _status(code: int, status: str, message: str) -> Reply:
    return Reply(code, {"error": {"code": code, "message": message, "status": status}})


class FakeGoogleAudience(FakePlatform):
    rate_windows = ((300, 60.0),)

    def __init__(self, token: str, user_list_id: str, **kw):
        super().__init__(**kw)
        self.token, self.user_list_id = token, user_list_id
        self.members: set[str] = set()  # hashed emails (and phones) on the list
        self._ids = itertools.count(1)

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self, req: Request) -> Reply:
        return _status(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")

    def throttle(self, req: Request, wait_s: float) -> Reply:
        reply = _status(429, "RESOURCE_EXHAUSTED", "Quota exceeded for requests per minute.")
        reply.headers["Retry-After"] = f"{wait_s:.3f}"
        return reply

    def handle(self, req: Request) -> Reply:
        action = {"/v1/audienceMembers:ingest": "ingest", "/v1/audienceMembers:remove": "remove"}.get(
            req.path
        )
        if req.method != "POST" or action is None:
            return _status(404, "NOT_FOUND", req.path)
        body = req.json() or {}
        destinations = body.get("destinations") or []
        if not destinations or destinations[0].get("productDestinationId") != self.user_list_id:
            return _status(400, "INVALID_ARGUMENT", "destinations: unknown user list")
        if body.get("encoding") != "HEX":
            return _status(400, "INVALID_ARGUMENT", "encoding must be HEX here")
        members = body.get("audienceMembers") or []
        if not members:
            return _status(400, "INVALID_ARGUMENT", "audience_members: at least one member is required")
        if len(members) > 10_000:
            self.too_large()
            return _status(400, "INVALID_ARGUMENT", "audience_members: at most 10000 members per request")
        hashes = []
        for index, member in enumerate(members):
            ids = member.get("userData", {}).get("userIdentifiers", [])
            values = [v for i in ids for v in i.values()]
            if not ids or len(ids) > 10 or not all(SHA256_HEX.match(v) for v in values):
                return _status(
                    400, "INVALID_ARGUMENT", f"audience_members[{index}]: invalid user identifiers"
                )
            if any(v in self.reject_keys for v in values):
                return _status(400, "INVALID_ARGUMENT", f"audience_members[{index}]: identifier not allowed")
            hashes.append([i.get("emailAddress") or i.get("phoneNumber") for i in ids])
        if not body.get("validateOnly"):
            for values in hashes:
                (self.members.update if action == "ingest" else self.members.difference_update)(values)
        return Reply(200, {"requestId": f"req{next(self._ids)}"})
