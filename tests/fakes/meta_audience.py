"""Fake Meta Graph API custom audience `users` edge: Bearer token (error 190 otherwise),
POST adds and DELETE removes rows of the EXTERN_ID / EMAIL_SHA256 / PHONE_SHA256 schema, 10,000
rows per request, invalid rows reported by sample, throttling as error 80003 with
X-Business-Use-Case-Usage."""

from __future__ import annotations

import json

from .base import SHA256_HEX, FakePlatform, Reply, Request


def _graph_error(status: int, code: int, message: str, subcode: int | None = None) -> Reply:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "t1"}
    if subcode:
        error["error_subcode"] = subcode
    return Reply(status, {"error": error})


class FakeMetaAudience(FakePlatform):
    rate_windows = ((100, 60.0),)

    def __init__(self, token: str, audience_id: str, api_version: str = "v25.0", **kw):
        super().__init__(**kw)
        self.token, self.audience_id, self.version = token, audience_id, api_version
        self.rows: dict[str, list[str]] = {}  # by EXTERN_ID

    @property
    def members(self) -> set[str]:
        return {v for row in self.rows.values() for v in row[1:] if v}

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self, req: Request) -> Reply:
        return _graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")

    def throttle(self, req: Request, wait_s: float) -> Reply:
        reply = _graph_error(400, 80003, "There have been too many calls to this ad-account.", 2446079)
        usage = {"1": [{"type": "custom_audience", "call_count": 100, "estimated_time_to_regain_access": 0}]}
        reply.headers.update({"X-Business-Use-Case-Usage": json.dumps(usage), "Retry-After": f"{wait_s:.3f}"})
        return reply

    def handle(self, req: Request) -> Reply:
        edge = f"/{self.version}/{self.audience_id}"
        if req.method == "GET" and req.path == edge:
            return Reply(200, {"id": self.audience_id})
        if req.path != edge + "/users" or req.method not in ("POST", "DELETE"):
            return _graph_error(400, 100, "Unsupported request: object does not exist", 33)
        payload = (req.json() or {}).get("payload", {})
        if payload.get("schema") != ["EXTERN_ID", "EMAIL_SHA256", "PHONE_SHA256"]:
            return _graph_error(400, 100, "Invalid schema")
        data = payload.get("data", [])
        if len(data) > 10_000:
            self.too_large()
            return _graph_error(400, 100, "Too many rows: at most 10000 per request")
        invalid = {}
        for row in data:
            bad = [v for v in row if v and not SHA256_HEX.match(v)] or [
                v for v in row if v in self.reject_keys
            ]
            if bad:
                invalid[bad[0]] = "invalid"
            elif req.method == "POST":
                self.rows[row[0]] = row
            else:
                self.rows.pop(row[0], None)
        return Reply(
            200,
            {
                "audience_id": self.audience_id,
                "session_id": 1,
                "num_received": len(data),
                "num_invalid_entries": len(invalid),
                "invalid_entry_samples": invalid,
            },
        )
