"""Fake HubSpot contacts batch upsert: Bearer token, 100 inputs, unique ids per request, a
whole-request 400 for invalid property values, 207 with context ids for refused contacts,
X-HubSpot-RateLimit-* headers on every reply and a RATE_LIMIT 429 over the 10 s window.
`POST .../contacts/gdpr-delete` (204) erases the contact found by `idProperty`; an email that
matches no contact is blocklisted instead (a later upsert of it is refused), any other unknown
id is a 404."""

from __future__ import annotations

from .base import EMAIL, FakePlatform, Reply, Request


class FakeHubSpot(FakePlatform):
    rate_windows = ((100, 10.0),)

    def __init__(self, token: str, **kw):
        super().__init__(**kw)
        self.token = token
        self.profiles: dict[str, dict] = {}  # by the id property's value
        self.blocklist: set[str] = set()  # emails GDPR-deleted before any contact had them

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self, req: Request) -> Reply:
        return Reply(
            401,
            {
                "status": "error",
                "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION",
                "correlationId": "c1",
            },
        )

    def _rate_headers(self, remaining: int, interval_s: float) -> dict[str, str]:
        limit, seconds = self.windows[0] if self.windows else (100, 10.0)
        return {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int((interval_s or seconds) * 1000)),
        }

    def throttle(self, req: Request, wait_s: float) -> Reply:
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c1",
            "policyName": "TEN_SECONDLY_ROLLING",
        }
        return Reply(429, body, self._rate_headers(0, wait_s))

    def handle(self, req: Request) -> Reply:
        reply = self._route(req)
        if self.windows:
            limit, seconds = self.windows[0]
            used = sum(1 for r in self.requests if r.arrived > req.arrived - seconds)
            reply.headers.update(self._rate_headers(limit - used, seconds))
        return reply

    def _route(self, req: Request) -> Reply:
        if req.method == "GET" and req.path == "/crm/v3/objects/contacts":
            return Reply(200, {"results": []})
        if req.method == "POST" and req.path == "/crm/v3/objects/contacts/gdpr-delete":
            return self._gdpr_delete(req.json() or {})
        if req.path != "/crm/v3/objects/contacts/batch/upsert":
            return Reply(404, {"status": "error", "message": "Not found", "category": "OBJECT_NOT_FOUND"})
        inputs = (req.json() or {}).get("inputs", [])
        if len(inputs) > 100:
            self.too_large()
            return self._invalid("Batch input limit is 100")
        ids = [i["id"] for i in inputs]
        if len(set(ids)) != len(ids):
            return self._invalid("Duplicate IDs found in batch input")
        for item in inputs:
            email = item["properties"].get("email", item["id"] if item["idProperty"] == "email" else None)
            if email is not None and not EMAIL.match(email):
                return self._invalid(f'Property values were not valid: email "{email}" is invalid')
        errors, results = [], []
        for item in inputs:
            email = item["properties"].get("email", item["id"] if item["idProperty"] == "email" else None)
            if email in self.blocklist:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Contact email is blocklisted by a GDPR delete",
                        "context": {"ids": [item["id"]]},
                    }
                )
                continue
            if item["id"] in self.reject_keys or item["properties"].get("email") in self.reject_keys:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Contact is blocked",
                        "context": {"ids": [item["id"]]},
                    }
                )
                continue
            profile = self.profiles.setdefault(item["id"], {})
            for name, value in item["properties"].items():
                if value == "":
                    profile.pop(name, None)
                else:
                    profile[name] = value
            results.append({"id": str(len(self.profiles)), "new": False, "properties": item["properties"]})
        body = {"status": "COMPLETE", "results": results, "startedAt": "", "completedAt": ""}
        if errors:
            return Reply(207, {**body, "errors": errors, "numErrors": len(errors)})
        return Reply(200, body)

    def _gdpr_delete(self, body: dict) -> Reply:
        object_id, id_property = body.get("objectId"), body.get("idProperty")
        if not object_id:
            return self._invalid("objectId is required")
        if object_id in self.reject_keys:
            return self._invalid("Contact cannot be deleted")
        if object_id in self.profiles:
            del self.profiles[object_id]
            return Reply(204, b"")
        if id_property == "email":
            self.blocklist.add(object_id)
            return Reply(204, b"")
        return Reply(404, {"status": "error", "message": "Object not found", "category": "OBJECT_NOT_FOUND"})

    def _invalid(self, message: str) -> Reply:
        return Reply(
            400,
            {
                "status": "error",
                "message": message,
                "category": "VALIDATION_ERROR",
                "correlationId": "c1",
                "errors": [{"message": message, "in": "inputs"}],
            },
        )
