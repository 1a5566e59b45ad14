"""Fake Braze `/users/track`: Bearer key, 75 objects per request (attributes and events
together), per-object errors inside a 201, 429 with X-RateLimit-* headers, no dedup.
`/users/delete`: the key's users.delete permission, one identifier type and at most 50
identifiers per request, unknown ids no error, its own 20,000/min window."""

from __future__ import annotations

import time

from .base import E164, EMAIL, FakePlatform, Reply, Request

ALL_PERMISSIONS = frozenset({"users.track", "users.delete"})
ID_TYPES = ("external_ids", "user_aliases", "braze_ids", "email_addresses", "phone_numbers")


class FakeBraze(FakePlatform):
    rate_windows = ((3000, 3.0),)
    route_windows = {"/users/delete": ((20_000, 60.0),)}
    max_objects = 75
    max_delete_ids = 50

    def __init__(self, api_key: str, permissions: frozenset[str] = ALL_PERMISSIONS, **kw):
        super().__init__(**kw)
        self.api_key = api_key
        self.permissions = permissions
        self.profiles: dict[str, dict] = {}
        self.events: list[dict] = []

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.api_key}"

    def unauthorized(self, req: Request) -> Reply:
        return Reply(401, {"message": "Unauthorized: Unknown or missing REST API Key."})

    def throttle(self, req: Request, wait_s: float) -> Reply:
        limit = self.windows[0][0] if self.windows else 3000
        reset = f"{time.time() + wait_s:.3f}"
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
        return Reply(429, {"message": "Too Many Requests"}, headers)

    def handle(self, req: Request) -> Reply:
        if req.method != "POST" or req.path not in ("/users/track", "/users/delete"):
            return Reply(404, {"message": "Not found"})
        permission = req.path.strip("/").replace("/", ".")
        if permission not in self.permissions:
            return Reply(401, {"message": f"Unauthorized: the API key lacks the {permission} permission."})
        if not req.headers.get("content-type", "").startswith("application/json"):
            return Reply(415, {"message": "Unsupported Media Type"})
        if req.path == "/users/delete":
            return self._delete(req.json() or {})
        body = req.json() or {}
        attributes, events = body.get("attributes", []), body.get("events", [])
        if not attributes and not events:
            return Reply(
                400, {"message": "Valid data must be provided in the 'attributes' or 'events' fields."}
            )
        if len(attributes) + len(events) > self.max_objects:
            self.too_large()
            return Reply(400, {"message": "Max Input Length Exceeded"})
        errors = []
        for array, objects in (("attributes", attributes), ("events", events)):
            for index, obj in enumerate(objects):
                problem = self._problem(obj)
                if problem:
                    errors.append({"type": problem, "input_array": array, "index": index})
                elif array == "attributes":
                    self._apply(obj)
                else:
                    props = obj.get("properties", {})
                    self.events.append({"key": obj["external_id"], "name": obj["name"], "id": None, **props})
        reply = {
            "message": "success",
            "attributes_processed": len(attributes),
            "events_processed": len(events),
        }
        return Reply(201, {**reply, "errors": errors} if errors else reply)

    def _delete(self, body: dict) -> Reply:
        kinds = [k for k in ID_TYPES if body.get(k)]
        if len(kinds) != 1:
            return Reply(400, {"message": "Exactly one identifier type must be provided."})
        ids = body[kinds[0]]
        if len(ids) > self.max_delete_ids:
            self.too_large()
            return Reply(400, {"message": f"At most {self.max_delete_ids} identifiers per request."})
        deleted = 0
        if kinds[0] == "external_ids":
            for external_id in ids:
                deleted += self.profiles.pop(external_id, None) is not None
            self.events = [e for e in self.events if e["key"] not in set(ids)]
        return Reply(201, {"deleted": deleted, "message": "success"})

    def _problem(self, obj: dict) -> str | None:
        if not obj.get("external_id"):
            return "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
        if obj["external_id"] in self.reject_keys:
            return "'external_id' is blocked (USER_BLOCKED)"
        if "email" in obj and not EMAIL.match(obj["email"]):
            return "'email' is not a valid email address (EMAIL_BAD_FORMAT)"
        if "phone" in obj and not E164.match(obj["phone"]):
            return "'phone' is not a valid phone number (PHONE_BAD_FORMAT)"
        return None

    def _apply(self, obj: dict) -> None:
        profile = self.profiles.setdefault(obj["external_id"], {})
        for name, value in obj.items():
            if name == "external_id":
                continue
            if value is None:  # Braze removes an attribute set to null
                profile.pop(name, None)
            else:
                profile[name] = value
