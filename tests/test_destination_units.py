"""Focused tests of the destination building blocks: identity normalisation and hashing,
webhook signatures, request splitting and bisection, throttle signals, the rate limiter,
Customer.io event ids, the settings union, and delete records in the file and webhook
destinations."""

from __future__ import annotations

import base64
import json
import random
import time
from datetime import date
from decimal import Decimal
from email.utils import formatdate

import httpx
import pytest
from email_validator import EmailNotValidError, validate_email
from standardwebhooks import Webhook
from ulid import ULID

from fakes.webhook import FakeWebhook
from phasegate.config import SyncConfig
from phasegate.destinations import REGISTRY, Record
from phasegate.destinations.braze import BrazeDestination, BrazeSettings
from phasegate.destinations.configs import FileDestinationConfig
from phasegate.destinations.customerio import event_ulid
from phasegate.destinations.file import FileDestination
from phasegate.destinations.http import (
    HttpClient,
    RateLimiter,
    RateWindow,
    RequestRejected,
    RetrySettings,
    chunk,
    encode_json,
    send_bisecting,
    server_wait,
    split_deletes,
)
from phasegate.destinations.identity import (
    InvalidIdentity,
    _plain_address,
    contact_of,
    meta_phone,
    normalize_email,
    normalize_phone,
    sha256_hex,
)
from phasegate.destinations.webhook import WebhookDestination, WebhookSettings
from phasegate.errors import PermanentError

SECRET = "whsec_" + base64.b64encode(b"unit-test-secret-of-32-bytes-len").decode()


# -- identity ------------------------------------------------------------------------------
def test_sha256_known_vector():
    assert (
        sha256_hex("test@example.com") == "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    )


def test_email_is_trimmed_lowercased_and_hashes_like_the_clean_form():
    assert normalize_email("  Test@Example.COM \n") == "test@example.com"
    assert sha256_hex(normalize_email(" TEST@example.com")) == sha256_hex("test@example.com")


@pytest.mark.parametrize("raw", ["", "plainaddress", "a@b", "a@@example.com", "a b@example.com"])
def test_invalid_email_is_refused_naming_the_field_not_the_value(raw):
    with pytest.raises(InvalidIdentity) as exc:
        normalize_email(raw)
    assert str(exc.value).startswith("email:")
    assert not raw.strip() or raw not in str(exc.value)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-0123", "US", "+14155550123"),
        ("+44 20 7946 0123", "US", "+442079460123"),
        ("020 7946 0123", "GB", "+442079460123"),
        ("0044 20 7946 0123", "GB", "+442079460123"),
    ],
)
def test_phone_becomes_e164(raw, region, e164):
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["12", "not a phone", "+1 555"])
def test_invalid_phone_is_refused(raw):
    with pytest.raises(InvalidIdentity, match="^phone:"):
        normalize_phone(raw, "US")


def test_google_and_meta_phone_hash_formats():
    e164 = normalize_phone("(415) 555-0123", "US")
    assert sha256_hex(e164) == sha256_hex("+14155550123")  # Google: with '+'
    assert sha256_hex(meta_phone(e164)) == sha256_hex("14155550123")  # Meta: digits only


def test_contact_skips_blank_fields_and_refuses_bad_ones():
    assert contact_of({"email": " ", "phone": None}, "US").email is None
    with pytest.raises(InvalidIdentity, match="^email:"):
        contact_of({"email": "nope"}, "US")


def _email_validator(raw: str) -> str | None:
    """What normalize_email documents: email-validator's result, lowercased; None if invalid."""
    try:
        return validate_email(str(raw).strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _normalized(raw: str) -> str | None:
    try:
        return normalize_email(raw)
    except InvalidIdentity:
        return None


TRICKY_EMAILS = [
    "person@example.com",
    "Person.Name+tag@Sub.Example.CO.UK",
    "  UPPER@EXAMPLE.COM  ",
    "POSTMASTER@example.com",  # a case-insensitive RFC 2142 mailbox
    "o'brien!#$%&*/=?^_`{|}~-@example.com",
    "a@b.c",
    "x@1.example.com",
    "x@example.123",  # numeric top-level label
    "x@example.c0m",
    "x@exa_mple.com",
    "x@-example.com",
    "x@example-.com",
    "x@ex--ample.com",  # reserved "ab--" label
    "x@xn--bcher-kva.example",  # punycode, decoded to unicode by email-validator
    "x@xn--invalid-.com",
    "x@bücher.example",  # IDN domain
    "x@BÜCHER.example",
    "ñandú@example.com",  # unicode local part
    "e\u0301@example.com",  # combining accent, NFC-normalised by email-validator
    "用户@例子.广告",
    '"quoted local"@example.com',
    '"a@b"@example.com',
    "x@example.com.",  # trailing dot
    "x.@example.com",
    ".x@example.com",
    "x..y@example.com",
    "x@example..com",
    "x@.example.com",
    "x@localhost",
    "x@example.local",
    "x@foo.test",
    "x@TEST",
    "x@onion",
    "x@a.arpa",
    "x@invalid",
    "x@example.invalid.com",
    "Name <x@example.com>",
    "x@[192.168.0.1]",
    "x@example.com\n",
    "x @example.com",
    "x@exa mple.com",
    "x@example\u3002com",  # ideographic full stop
    "x@example．com",  # full-width full stop
    "x＠example.com",
    "",
    "@example.com",
    "x@",
    "x",
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",  # local parts over 64 pass: email-validator is not strict
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "a" * 240 + "@example.com",  # 252 characters
    "a" * 242 + "@example.com",  # 254
    "a" * 243 + "@example.com",  # 255
    "a@" + ".".join(["b" * 62] * 4) + ".com",
]


@pytest.mark.parametrize("raw", TRICKY_EMAILS)
def test_email_fast_path_matches_email_validator(raw):
    raw = raw.encode().decode("unicode_escape") if "\\u" in raw or "\\n" in raw else raw
    assert _normalized(raw) == _email_validator(raw)
    if _plain_address(raw.strip()) is not None:  # the fast path only ever accepts
        assert _email_validator(raw) is not None


def test_email_fast_path_matches_email_validator_on_random_addresses():
    # Short random strings over the characters where the two paths could disagree.
    rng = random.Random(4)
    alphabet = "abXY09" * 4 + ".-_+@'\"!é. -"
    tlds = ["com", "COM", "c0m", "123", "test", "local", "x-y", "xn--p1ai", "", "co.", "a--b"]
    taken = 0
    for _ in range(12_000):
        local = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        hostname = rng.choice([alphabet, "abXY09-."])
        domain = "".join(rng.choice(hostname) for _ in range(rng.randint(0, 6)))
        raw = f"{local}@{domain}.{rng.choice(tlds)}" if rng.random() < 0.8 else local + domain
        taken += _plain_address(raw) is not None
        assert _normalized(raw) == _email_validator(raw), raw
    assert taken > 500  # the fast path was exercised


def test_identifier_caches_keep_rejections():
    for _ in range(2):  # the second time from the cache
        with pytest.raises(InvalidIdentity, match="^email: not a valid address$"):
            normalize_email("ñandú@@example.com")
        with pytest.raises(InvalidIdentity, match=r"^phone: not a valid number \(default region US\)$"):
            normalize_phone("+1 555 000", "US")
        assert normalize_phone("(415) 555-0123", "US") == "+14155550123"
        assert normalize_email("Ñandú@Example.com") == "ñandú@example.com"


def test_encode_json_is_json_dumps():
    bodies = [
        {"batch": [{"a": 1, "b": 2.5, "c": None, "d": True, "e": 'ñ \u2028 "q" \\ \n'}]},
        [1.0, 1e300, -0.0, float("nan"), float("inf"), 10**30, [], {}, "用户"],
        {"when": date(2026, 1, 2), "amount": Decimal("1.10"), "nested": {"x": [{"y": "z"}]}},
        {1: "int key", 2.5: "float key", None: "null key", False: "bool key"},
        "a string",
        3,
        None,
    ]
    for body in bodies:
        expected = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        assert encode_json(body) == expected


# -- splitting and bisection ---------------------------------------------------------------
def test_chunk_respects_count_and_bytes():
    items = [{"v": "x" * 10} for _ in range(10)]
    size = len(encode_json(items[0])) + 1
    assert [len(c) for c in chunk(items, max_count=4)] == [4, 4, 2]
    assert [len(c) for c in chunk(items, max_count=100, max_bytes=3 * size + 5, overhead=5)] == [3, 3, 3, 1]
    assert chunk([], max_count=3) == []


def test_bisection_isolates_the_refused_items_and_delivers_the_rest():
    bad = {3, 17, 18}
    delivered, calls = [], []

    def send(group):
        calls.append(len(group))
        if bad & set(group):
            raise RequestRejected(f"invalid item among {len(group)}")
        delivered.extend(group)

    refused = send_bisecting(list(range(32)), send)
    assert sorted(item for item, _ in refused) == sorted(bad)
    assert all(message == "invalid item among 1" for _, message in refused)
    assert sorted(delivered) == sorted(set(range(32)) - bad)
    assert len(calls) <= 2 * len(bad) * 6  # logarithmic in the batch size per bad item


def test_bisection_of_a_clean_batch_is_one_request():
    calls = []
    assert send_bisecting([1, 2, 3], calls.append) == []
    assert calls == [[1, 2, 3]]


# -- throttle signals and rate limiting ----------------------------------------------------
def _response(status=200, **headers):
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_server_wait_reads_every_platform_signal():
    assert server_wait(_response(429, retry_after="7")) == 7
    assert 8 <= server_wait(_response(429, retry_after=formatdate(time.time() + 10, usegmt=True))) <= 10
    assert 3 <= server_wait(_response(429, x_ratelimit_reset=str(int(time.time()) + 5))) <= 5
    assert server_wait(_response(429, x_ratelimit_retry_after="3")) == 3  # Braze on MAU contracts
    assert server_wait(_response(200, ratelimit_remaining="0", ratelimit_reset="2")) == 2  # Klaviyo
    hubspot = {"x_hubspot_ratelimit_remaining": "0", "x_hubspot_ratelimit_interval_milliseconds": "10000"}
    assert server_wait(_response(200, **hubspot)) == 10
    assert server_wait(_response(200, x_hubspot_ratelimit_daily_remaining="0")) > 0
    assert server_wait(_response(200, x_ratelimit_remaining="5", x_ratelimit_reset="2")) is None


def test_rate_limiter_keeps_every_window():
    limiter = RateLimiter([RateWindow(requests=3, seconds=0.2), RateWindow(requests=5, seconds=1)])
    stamps = []
    for _ in range(7):
        slot = limiter.acquire()
        stamps.append(time.monotonic())
        limiter.release(slot)
    assert stamps[3] - stamps[0] >= 0.2
    assert stamps[5] - stamps[0] >= 1.0


# -- platform specifics --------------------------------------------------------------------
def test_customerio_event_ids_are_deterministic_ulids_dated_by_the_event():
    record = Record("0123456789abcdef0123456789abcdef", "event", "c1", {"occurred_on": "2025-01-02"})
    first = event_ulid(record)
    assert first == event_ulid(record) and len(first) == 26
    assert ULID.from_str(first).datetime.date().isoformat() == "2025-01-02"


def _webhook(url: str, secret: str) -> WebhookDestination:
    return WebhookDestination(
        WebhookSettings(type="webhook", url=url, secret_env="HOOK"), env={"HOOK": secret}
    )


def test_webhook_signature_verifies_with_standardwebhooks():
    with FakeWebhook(SECRET) as fake:
        record = Record("0" * 32, "upsert", "c1", {"onboarding_phase": "active"})
        assert _webhook(fake.url + FakeWebhook.path, SECRET).write_batch("s", [record]).accepted == [
            record.record_id
        ]
        (request,) = fake.requests
    assert request.headers["webhook-id"] == record.record_id
    message = Webhook(SECRET).verify(request.body, request.headers)
    assert message["data"]["payload"] == {"onboarding_phase": "active"}


def test_webhook_410_retires_the_destination():
    with FakeWebhook(SECRET) as fake:
        fake.retired = True
        with pytest.raises(PermanentError, match="410"):
            _webhook(fake.url + FakeWebhook.path, SECRET).write_batch(
                "s", [Record("1" * 32, "remove", "c", {})]
            )


def test_malformed_webhook_secret_is_permanent_and_not_echoed():
    with pytest.raises(PermanentError, match="HOOK") as exc:
        _webhook("http://127.0.0.1:9/x", "whsec_%%%not-base64").check()
    assert "not-base64" not in str(exc.value)


@pytest.mark.parametrize(
    "destination",
    [
        {"type": "braze", "instance": "fra-01"},
        {"type": "customerio", "region": "eu"},
        {"type": "klaviyo"},
        {"type": "iterable"},
        {"type": "hubspot", "id_property": "customer_key"},
        {"type": "segment"},
        {"type": "rudderstack", "data_plane_url": "https://x.dataplane.rudderstack.com"},
        {"type": "google_audience", "operating_account_id": "1", "user_list_id": "2"},
        {"type": "meta_audience", "audience_id": "3"},
        {"type": "webhook", "url": "https://example.com/hook"},
    ],
)
def test_every_destination_type_is_configurable_and_registered(destination):
    config = SyncConfig.model_validate({"name": "s", "destination": destination})
    assert config.destination.type in REGISTRY


def test_inline_credentials_are_refused():
    with pytest.raises(ValueError, match="api_key"):
        SyncConfig.model_validate({"name": "s", "destination": {"type": "braze", "api_key": "inline"}})


def test_braze_host_follows_the_instance():
    eu = BrazeDestination(BrazeSettings(type="braze", instance="fra-01"), env={})
    assert eu.base_url() == "https://rest.fra-01.braze.eu"
    assert BrazeDestination(BrazeSettings(type="braze"), env={}).base_url() == "https://rest.iad-01.braze.com"


# -- deletion requests ---------------------------------------------------------------------
def test_a_route_with_its_own_limit_is_not_held_back_by_the_default_windows():
    client = HttpClient(
        "t",
        "http://127.0.0.1:9",
        headers={},
        timeout_s=1.0,
        retry=RetrySettings(),
        windows=[RateWindow(requests=1, seconds=60)],
        route_windows={"/api/users/byUserId": [RateWindow(requests=2, seconds=60)]},
    )
    default = client.limiter_for("/api/users/bulkUpdate")
    default.release(default.acquire())  # the default window is now full for a minute
    route = client.limiter_for("/api/users/byUserId/c%201")
    assert route is not default and client.limiter_for("/api/users/byUserIdX") is default
    started = time.monotonic()
    for _ in range(2):
        route.release(route.acquire())
    assert time.monotonic() - started < 0.5
    client.close()


def test_split_deletes_drops_the_other_records_of_a_deleted_customer():
    up1, up2 = Record("1" * 32, "upsert", "c1", {}), Record("2" * 32, "upsert", "c2", {})
    ev1, del1 = Record("3" * 32, "event", "c1", {}), Record("4" * 32, "delete", "c1", {"email": None})
    assert split_deletes([up1, ev1, up2, del1]) == ([up2], [del1])


def test_file_destination_writes_delete_records(tmp_path):
    dest = FileDestination(FileDestinationConfig(type="file", path=str(tmp_path)))
    assert dest.capabilities.supports_delete
    records = [
        Record("a" * 32, "upsert", "c1", {"onboarding_phase": "active"}),
        Record("b" * 32, "delete", "c2", {"email": "c2@example.com", "phone": None}),
    ]
    assert sorted(dest.write_batch("s", records).accepted) == ["a" * 32, "b" * 32]
    rows = [json.loads(line) for line in dest.batch_path("s", records).read_text().splitlines()]
    deleted = {"record_id": "b" * 32, "kind": "delete", "key": "c2", "email": "c2@example.com", "phone": None}
    assert rows[1] == deleted


def test_webhook_delete_is_a_signed_customer_deleted_event():
    with FakeWebhook(SECRET) as fake:
        record = Record("5" * 32, "delete", "c9", {"email": "c9@example.com"})
        assert _webhook(fake.url + FakeWebhook.path, SECRET).write_batch("s", [record]).accepted == [
            record.record_id
        ]
        (request,) = fake.requests
    message = Webhook(SECRET).verify(request.body, request.headers)
    assert message["type"] == "customer.deleted"
    assert message["data"]["key"] == "c9" and message["data"]["payload"] == {"email": "c9@example.com"}
