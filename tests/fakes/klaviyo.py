"""Fake Klaviyo: `Klaviyo-API-Key` auth, a required revision header, profile bulk import jobs
(finished after a configurable number of polls, per-profile import errors), event bulk create
jobs (a unique_id repeated inside one request fails the whole request; across requests the
first event wins), profile import with `unset`, and 429 with Retry-After.

Deletion: `GET /api/profiles?filter=equals(external_id,"...")` finds profile ids, and
`POST /api/data-privacy-deletion-jobs` (202) erases every profile matching exactly one of id,
email or phone_number (two are a 400), each route with its documented windows (deletion jobs
3/s and 60/min, profiles 75/s and 700/min). Klaviyo does not document the answer for a job
matching nothing; the fake answers 404 for an unknown id and 202 for an unknown email or phone."""

from __future__ import annotations

import itertools
import json
import re

from .base import E164, EMAIL, FakePlatform, Reply, Request

JOBS = "/api/profile-bulk-import-jobs"
DELETION_JOBS = "/api/data-privacy-deletion-jobs"
PROFILES = "/api/profiles"
EXTERNAL_ID_FILTER = re.compile(r'^equals\(external_id,("(?:[^"\\]|\\.)*")\)$')


def _error(status: int, code: str, detail: str, pointer: str = "/data") -> Reply:
    error = {"id": "e1", "status": status, "code": code, "title": code, "detail": detail}
    return Reply(status, {"errors": [{**error, "source": {"pointer": pointer}}]})


class FakeKlaviyo(FakePlatform):
    rate_windows = ((10, 1.0), (150, 60.0))
    route_windows = {DELETION_JOBS: ((3, 1.0), (60, 60.0)), PROFILES: ((75, 1.0), (700, 60.0))}
    max_bytes = 5_000_000

    def __init__(self, api_key: str, polls_to_complete: int = 1, **kw):
        super().__init__(**kw)
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.profiles: dict[str, dict] = {}
        self.events: list[dict] = []
        self.jobs: dict[str, dict] = {}
        self.profile_ids: dict[str, str] = {}  # external_id -> Klaviyo's profile id
        self._seen_events: set[tuple[str, str, str]] = set()
        self._ids = itertools.count(1)

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Klaviyo-API-Key {self.api_key}"

    def unauthorized(self, req: Request) -> Reply:
        return _error(401, "not_authenticated", "Missing or invalid private key.")

    def throttle(self, req: Request, wait_s: float) -> Reply:
        reply = _error(429, "throttled", "Request was throttled.")
        reply.headers["Retry-After"] = f"{wait_s:.3f}"
        return reply

    def handle(self, req: Request) -> Reply:
        if not req.headers.get("revision"):
            return _error(400, "invalid", "The revision header is required.")
        if req.method == "GET":
            return self._get(req)
        if req.headers.get("content-type") != "application/vnd.api+json":
            return _error(415, "unsupported_media_type", "Use application/vnd.api+json")
        if len(req.body) > self.max_bytes:
            self.too_large()
            return _error(413, "request_too_large", "Request body over 5 MB")
        body = req.json()
        if req.path == JOBS:
            return self._import(body)
        if req.path == "/api/event-bulk-create-jobs":
            return self._create_events(body)
        if req.path == "/api/profile-import":
            return self._unset(body)
        if req.path == DELETION_JOBS:
            return self._delete(body)
        return _error(404, "not_found", req.path)

    def _stored(self, external_id: str) -> dict:
        self.profile_ids.setdefault(external_id, f"01PROFILE{next(self._ids):06d}")
        return self.profiles.setdefault(external_id, {})

    def _find(self, req: Request) -> Reply:
        match = EXTERNAL_ID_FILTER.match((req.query.get("filter") or [""])[0])
        if not match:
            return _error(400, "invalid", "Unsupported filter", "/filter")
        external_id = json.loads(match.group(1))
        found = [external_id] if external_id in self.profiles else []
        data = [
            {"type": "profile", "id": self.profile_ids[k], "attributes": {"external_id": k}} for k in found
        ]
        return Reply(200, {"data": data, "links": {"next": None}})

    def _delete(self, body: dict) -> Reply:
        data = body.get("data") or {}
        if data.get("type") != "data-privacy-deletion-job":
            return _error(400, "invalid", "data.type must be data-privacy-deletion-job", "/data/type")
        profile = ((data.get("attributes") or {}).get("profile") or {}).get("data") or {}
        attributes = profile.get("attributes") or {}
        given = {
            name: value
            for name, value in (
                ("id", profile.get("id")),
                ("email", attributes.get("email")),
                ("phone", attributes.get("phone_number")),
            )
            if value
        }
        if len(given) != 1:
            return _error(400, "invalid", "Provide exactly one of id, email or phone_number.")
        ((name, value),) = given.items()
        if name == "id":
            matched = [k for k, pid in self.profile_ids.items() if pid == value and k in self.profiles]
            if not matched:
                return _error(404, "not_found", "A profile with this id does not exist.", "/data/id")
        else:
            matched = [k for k, stored in self.profiles.items() if stored.get(name) == value]
        if any(k in self.reject_keys for k in matched):
            return _error(400, "invalid", "This profile cannot be deleted.")
        for key in matched:
            self.profiles.pop(key, None)
            self.profile_ids.pop(key, None)
            self.events = [e for e in self.events if e["key"] != key]
        return Reply(202, b"")

    def _get(self, req: Request) -> Reply:
        if req.path == PROFILES:
            return self._find(req)
        if req.path == JOBS:
            return Reply(200, {"data": [], "links": {"next": None}})
        parts = req.path.removeprefix(JOBS + "/").split("/")
        job = self.jobs.get(parts[0])
        if job is None:
            return _error(404, "not_found", "job not found")
        if parts[1:] == ["import-errors"]:
            return Reply(200, {"data": job["errors"], "links": {"next": None}})
        job["polls"] += 1
        if job["status"] != "complete" and job["polls"] >= self.polls_to_complete:
            self._complete(job)
        return Reply(
            200,
            {
                "data": {
                    "type": "profile-bulk-import-job",
                    "id": parts[0],
                    "attributes": {"status": job["status"]},
                }
            },
        )

    def _import(self, body: dict) -> Reply:
        profiles = body["data"]["attributes"]["profiles"]["data"]
        if len(profiles) > 10_000:
            self.too_large()
            return _error(400, "invalid", "At most 10000 profiles per job", "/data/attributes/profiles/data")
        job_id = f"job{next(self._ids)}"
        self.jobs[job_id] = {"profiles": profiles, "status": "queued", "polls": 0, "errors": []}
        return Reply(
            202,
            {"data": {"type": "profile-bulk-import-job", "id": job_id, "attributes": {"status": "queued"}}},
        )

    def _complete(self, job: dict) -> None:
        for index, profile in enumerate(job["profiles"]):
            attributes = profile["attributes"]
            problem = self._problem(attributes)
            if problem:
                error = {
                    "code": "invalid",
                    "title": "Invalid input",
                    "detail": problem,
                    "source": {"pointer": f"/data/attributes/profiles/data/{index}"},
                    "original_payload": attributes,
                }
                job["errors"].append({"type": "import-error", "id": f"err{index}", "attributes": error})
                continue
            stored = self._stored(attributes["external_id"])
            # a null never clears a Klaviyo property; only profile-import's unset does
            stored.update({k: v for k, v in attributes.get("properties", {}).items() if v is not None})
            for field, name in (("email", "email"), ("phone_number", "phone")):
                if attributes.get(field):
                    stored[name] = attributes[field]
        job["status"] = "complete"

    def _problem(self, attributes: dict) -> str | None:
        if attributes.get("external_id") in self.reject_keys:
            return "This profile is suppressed and cannot be imported."
        if attributes.get("email") and not EMAIL.match(attributes["email"]):
            return "Invalid email address"
        if attributes.get("phone_number") and not E164.match(attributes["phone_number"]):
            return "Invalid phone number"
        return None

    def _create_events(self, body: dict) -> Reply:
        entries = body["data"]["attributes"]["events-bulk-create"]["data"]
        flat = [
            (entry["attributes"]["profile"]["data"]["attributes"], event["attributes"])
            for entry in entries
            for event in entry["attributes"]["events"]["data"]
        ]
        if len(flat) > 1000:
            self.too_large()
            return _error(400, "invalid", "At most 1000 events per job")
        keys = [
            (p.get("external_id"), e["metric"]["data"]["attributes"]["name"], e.get("unique_id"))
            for p, e in flat
        ]
        if len(set(keys)) != len(keys):
            return _error(
                400, "duplicate_unique_id", "unique_id repeated within the request; nothing was processed"
            )
        for index, (profile, _) in enumerate(flat):
            if profile.get("external_id") in self.reject_keys:
                return _error(
                    400,
                    "invalid",
                    "profile is suppressed",
                    f"/data/attributes/events-bulk-create/data/{index}",
                )
        for key, (_, event) in zip(keys, flat, strict=True):
            if key not in self._seen_events:
                self._seen_events.add(key)
                self.events.append({"key": key[0], "name": key[1], "id": key[2], **event["properties"]})
        return Reply(202, b"")

    def _unset(self, body: dict) -> Reply:
        attributes = body["data"]["attributes"]
        if attributes.get("external_id") in self.reject_keys:
            return _error(400, "invalid", "profile is suppressed")
        stored = self._stored(attributes["external_id"])
        for name in body["data"].get("meta", {}).get("patch_properties", {}).get("unset", []):
            stored.pop(name, None)
        return Reply(200, {"data": {"type": "profile", "id": "p1", "attributes": attributes}})
