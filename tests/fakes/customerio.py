"""Fake Customer.io Track API: Basic site_id:api_key, `/api/v2/batch` up to 500 KB, 207 with
unlocated errors for invalid objects, events deduplicated by their ULID `id`, and the person
action `delete`, which erases the person and their events (an unknown person is no error)."""

from __future__ import annotations

import base64
import re

from .base import E164, EMAIL, FakePlatform, Reply, Request

ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


class FakeCustomerIo(FakePlatform):
    rate_windows = ((100, 1.0),)
    max_bytes = 500_000

    def __init__(self, site_id: str, api_key: str, region: str = "us", **kw):
        super().__init__(**kw)
        self.credentials = "Basic " + base64.b64encode(f"{site_id}:{api_key}".encode()).decode()
        self.region = region
        self.profiles: dict[str, dict] = {}
        self.events: list[dict] = []
        self._event_ids: set[str] = set()

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == self.credentials

    def unauthorized(self, req: Request) -> Reply:
        return Reply(401, {"meta": {"error": "Unauthorized request"}})

    def handle(self, req: Request) -> Reply:
        if (req.method, req.path) == ("GET", "/api/v1/accounts/region"):
            host = "track-eu.customer.io" if self.region == "eu" else "track.customer.io"
            return Reply(200, {"url": f"https://{host}", "data_center": self.region})
        if (req.method, req.path) != ("POST", "/api/v2/batch"):
            return Reply(404, {"errors": [{"reason": "not found", "message": req.path}]})
        if len(req.body) > self.max_bytes:
            self.too_large()
            return Reply(400, {"errors": [{"reason": "request too large", "message": "batch over 500 KB"}]})
        errors = []
        for item in (req.json() or {}).get("batch", []):
            problem = self._problem(item)
            if problem:
                errors.append(problem)
            elif item["action"] == "identify":
                self._identify(item)
            elif item["action"] == "delete":
                key = item["identifiers"]["id"]
                self.profiles.pop(key, None)
                self.events = [e for e in self.events if e["key"] != key]
            elif item["id"] not in self._event_ids:
                self._event_ids.add(item["id"])
                key = item["identifiers"]["id"]
                self.events.append({"key": key, "name": item["name"], "id": item["id"], **item["attributes"]})
        return Reply(207, {"errors": errors}) if errors else Reply(200, b"")

    def _problem(self, item: dict) -> dict | None:
        key = item.get("identifiers", {}).get("id")
        attributes = item.get("attributes", {})
        if not key:
            return {"reason": "required", "field": "identifiers", "message": "an identifier is required"}
        if key in self.reject_keys:
            return {"reason": "invalid", "field": "identifiers.id", "message": "person is suppressed"}
        if item.get("action") == "event" and not ULID.match(str(item.get("id", ""))):
            return {"reason": "invalid", "field": "id", "message": "event id must be a ULID"}
        if attributes.get("email") and not EMAIL.match(attributes["email"]):
            return {"reason": "invalid", "field": "attributes.email", "message": "invalid email"}
        if attributes.get("phone") and not E164.match(attributes["phone"]):
            return {"reason": "invalid", "field": "attributes.phone", "message": "invalid phone"}
        if any(len(str(v).encode()) > 1000 for v in attributes.values()):
            return {
                "reason": "too large",
                "field": "attributes",
                "message": "attribute value over 1000 bytes",
            }
        return None

    def _identify(self, item: dict) -> None:
        profile = self.profiles.setdefault(item["identifiers"]["id"], {})
        for name, value in item.get("attributes", {}).items():
            if value in ("", None):
                profile.pop(name, None)
            else:
                profile[name] = value
