"""Fake Klaviyo: `Klaviyo-API-Key` auth, a required revision header, profile bulk import jobs
(finished after a configurable number of polls, per-profile import errors), event bulk create
jobs (a unique_id repeated inside one request fails the whole request; across requests the
first event wins), profile import with `unset`, and 429 with Retry-After."""

from __future__ import annotations

import itertools

from .base import E164, EMAIL, FakePlatform, Reply, Request

JOBS = "/api/profile-bulk-import-jobs"


def _error(status: int, code: str, detail: str, pointer: str = "/data") -> Reply:
    error = {"id": "e1", "status": status, "code": code, "title": code, "detail": detail}
    return Reply(status, {"errors": [{**error, "source": {"pointer": pointer}}]})


class FakeKlaviyo(FakePlatform):
    rate_windows = ((10, 1.0), (150, 60.0))
    max_bytes = 5_000_000

    def __init__(self, api_key: str, polls_to_complete: int = 1, **kw):
        super().__init__(**kw)
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.profiles: dict[str, dict] = {}
        self.events: list[dict] = []
        self.jobs: dict[str, dict] = {}
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
        return _error(404, "not_found", req.path)

    def _get(self, req: Request) -> Reply:
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
            stored = self.profiles.setdefault(attributes["external_id"], {})
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
        stored = self.profiles.setdefault(attributes["external_id"], {})
        for name in body["data"].get("meta", {}).get("patch_properties", {}).get("unset", []):
            stored.pop(name, None)
        return Reply(200, {"data": {"type": "profile", "id": "p1", "attributes": attributes}})
