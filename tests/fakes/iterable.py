"""Fake Iterable: `Api-Key` header, users/bulkUpdate and events/trackBulk (1,000 items, 4 MB),
refused users listed in invalidEmails / invalidUserIds / failedUpdates of a 200, events keyed by
`id` (a repeated id updates the event), 429 when over the per-second rate.
`DELETE /api/users/byUserId/{userId}` erases the user and their events, 3 requests/s on its own;
an unknown userId is a 400 BadParams "User does not exist", as Iterable answers."""

from __future__ import annotations

from urllib.parse import unquote

from .base import E164, EMAIL, FakePlatform, Reply, Request

DELETE_BY_USER_ID = "/api/users/byUserId"


class FakeIterable(FakePlatform):
    rate_windows = ((10, 1.0),)
    route_windows = {DELETE_BY_USER_ID: ((3, 1.0),)}

    def __init__(self, api_key: str, **kw):
        super().__init__(**kw)
        self.api_key = api_key
        self.profiles: dict[str, dict] = {}
        self._events: dict[str, dict] = {}

    @property
    def events(self) -> list[dict]:
        return list(self._events.values())

    def authorized(self, req: Request) -> bool:
        return req.headers.get("api-key") == self.api_key

    def unauthorized(self, req: Request) -> Reply:
        return Reply(401, {"msg": "Invalid API key", "code": "BadApiKey", "params": None})

    def throttle(self, req: Request, wait_s: float) -> Reply:
        return Reply(
            429,
            {"msg": "Rate limit exceeded", "code": "RateLimitExceeded", "params": None},
            {"Retry-After": f"{wait_s:.3f}"},
        )

    def handle(self, req: Request) -> Reply:
        if req.method == "GET" and req.path == "/api/lists":
            return Reply(200, {"lists": []})
        if req.method == "DELETE" and req.path.startswith(DELETE_BY_USER_ID + "/"):
            return self._delete(unquote(req.path.removeprefix(DELETE_BY_USER_ID + "/")))
        if len(req.body) > 4_000_000:
            self.too_large()
            return Reply(413, {"msg": "Request too large", "code": "BadParams", "params": None})
        body = req.json() or {}
        if req.path == "/api/users/bulkUpdate":
            return self._users(body.get("users", []))
        if req.path == "/api/events/trackBulk":
            return self._track(body.get("events", []))
        return Reply(404, {"msg": "Not found", "code": "NotFound", "params": None})

    def _delete(self, user_id: str) -> Reply:
        if user_id not in self.profiles:
            message = f"User does not exist. Email:  UserId: {user_id}"
            return Reply(400, {"msg": message, "code": "BadParams", "params": None})
        if user_id in self.reject_keys:
            return Reply(400, {"msg": "User cannot be deleted", "code": "BadParams", "params": None})
        del self.profiles[user_id]
        self._events = {k: e for k, e in self._events.items() if e["key"] != user_id}
        message = f"All users associated with {user_id} were successfully deleted"
        return Reply(200, {"msg": message, "code": "Success", "params": None})

    def _users(self, users: list[dict]) -> Reply:
        if len(users) > 1000:
            self.too_large()
            return Reply(400, {"msg": "Too many users", "code": "BadParams", "params": None})
        invalid_emails, invalid_ids, invalid_data = [], [], []
        for user in users:
            if user.get("email") and not EMAIL.match(user["email"]):
                invalid_emails.append(user["email"])
            elif user["userId"] in self.reject_keys:
                invalid_ids.append(user["userId"])
            elif user["dataFields"].get("phoneNumber") and not E164.match(user["dataFields"]["phoneNumber"]):
                invalid_data.append(user["userId"])
            else:
                profile = self.profiles.setdefault(user["userId"], {})
                for name, value in user["dataFields"].items():
                    name = "phone" if name == "phoneNumber" else name
                    if value is None:
                        profile.pop(name, None)
                    else:
                        profile[name] = value
                if user.get("email"):
                    profile["email"] = user["email"]
        failed = len(invalid_emails) + len(invalid_ids) + len(invalid_data)
        return Reply(
            200,
            {
                "successCount": len(users) - failed,
                "failCount": failed,
                "invalidEmails": invalid_emails,
                "invalidUserIds": invalid_ids,
                "failedUpdates": {"invalidDataUserIds": invalid_data, "invalidDataEmails": []},
            },
        )

    def _track(self, events: list[dict]) -> Reply:
        if len(events) > 1000:
            self.too_large()
            return Reply(400, {"msg": "Too many events", "code": "BadParams", "params": None})
        invalid_ids = []
        for event in events:
            if event["userId"] in self.reject_keys:
                invalid_ids.append(event["userId"])
                continue
            stored = {
                "key": event["userId"],
                "name": event["eventName"],
                "id": event["id"],
                **event["dataFields"],
            }
            self._events[event["id"]] = stored  # an existing id is updated, not added
        return Reply(
            200,
            {
                "successCount": len(events) - len(invalid_ids),
                "failCount": len(invalid_ids),
                "invalidEmails": [],
                "invalidUserIds": invalid_ids,
                "disallowedEventNames": [],
            },
        )
