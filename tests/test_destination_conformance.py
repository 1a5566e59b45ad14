"""One conformance suite for every platform destination, run over real HTTP against a loopback
fake of the platform: credentials, exact delivery, splitting, retries, throttling, per-record
rejections, crash replay, secrecy and deletion requests."""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from fakes.base import FakePlatform
from fakes.braze import FakeBraze
from fakes.customerio import FakeCustomerIo
from fakes.google_audience import FakeGoogleAudience
from fakes.hubspot import FakeHubSpot
from fakes.iterable import FakeIterable
from fakes.klaviyo import FakeKlaviyo
from fakes.meta_audience import FakeMetaAudience
from fakes.segment import FakeRudderStack, FakeSegment
from fakes.webhook import FakeWebhook
from phasegate.destinations import DELETE_UNSUPPORTED, REGISTRY, Record
from phasegate.destinations.base import BatchResult, Destination
from phasegate.destinations.braze import BrazeSettings
from phasegate.destinations.customerio import CustomerIoSettings
from phasegate.destinations.google_audience import GoogleAudienceSettings
from phasegate.destinations.hubspot import HubSpotSettings
from phasegate.destinations.iterable import IterableSettings
from phasegate.destinations.klaviyo import KlaviyoSettings
from phasegate.destinations.meta_audience import MetaAudienceSettings
from phasegate.destinations.segment import RudderStackSettings, SegmentSettings
from phasegate.destinations.webhook import WebhookSettings
from phasegate.errors import PermanentError, TransientError

pytestmark = pytest.mark.timeout(60)

KEY = "sk-live-Zq8rT5vW2xY7pL3m"  # distinctive, so any leak is found by substring search
SITE = "site-4f9a1c"
WRONG = "sk-wrong-Hh4kN8jB6dS1aQ9e"
HOOK_SECRET = "whsec_" + base64.b64encode(b"phasegate-conformance-secret-32b").decode()
WRONG_HOOK_SECRET = "whsec_" + base64.b64encode(b"some-other-receivers-secret-32by").decode()
FAST = {"retry": {"budget_s": 5, "max_attempts": 12, "initial_backoff_s": 0.005, "max_backoff_s": 0.05}}
CLEAR = ["onboarding_phase", "onboarding_phase_entered_on"]


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def email_of(i: int) -> str:
    return f"customer{i}@example.com"


def e164_of(i: int) -> str:
    return f"+1415555{i % 10000:04d}"


@dataclass
class Platform:
    name: str
    fake: Callable[[], FakePlatform]
    settings: Callable[..., Any]  # (fake url, **overrides) -> settings
    env: dict[str, str]  # the variables the settings name, with the right values
    wrong_env: dict[str, str]
    events: bool = True
    removes: bool = True  # can a remove record (empty payload) be carried out
    audience: str | None = None  # "google" | "meta": state is hashed members
    raw_payload: bool = False  # the payload travels as it is (webhook)
    oversize_rejected: bool = True  # a 200 KB attribute is refused before sending
    profile_key: Callable[[int], str] = lambda i: f"c{i}"
    refusal_token: Callable[[int], str] = lambda i: f"c{i}"  # what the fake's reject_keys matches
    big_batch: tuple[int, int] = (0, 0)  # (records, attribute bytes) exceeding one request's limit
    delete_refusable: bool = True  # the fake can refuse one customer's delete (reject_keys)
    delete_needs_contact: bool = False  # deletes by email/phone only, not by the customer key
    many_deletes: int = 20  # deletes in one batch, past the platform's per-request or rate limits
    extra: dict[str, Any] = field(default_factory=dict)


def _settings(cls, **fixed):
    def make(url: str, **overrides):
        return cls(**{**FAST, "timeout_s": 5.0, **fixed, "base_url": url, **overrides})

    return make


PLATFORMS = [
    Platform(
        "braze",
        lambda: FakeBraze(KEY),
        _settings(BrazeSettings, type="braze", api_key_env="T_BRAZE", clear_on_remove=CLEAR),
        {"T_BRAZE": KEY},
        {"T_BRAZE": WRONG},
        big_batch=(80, 10),
        delete_refusable=False,  # /users/delete reports a count, never a refused id
        many_deletes=120,  # 50 external_ids per request
    ),
    Platform(
        "customerio",
        lambda: FakeCustomerIo(SITE, KEY),
        _settings(
            CustomerIoSettings,
            type="customerio",
            site_id_env="T_CIO_SITE",
            api_key_env="T_CIO_KEY",
            clear_on_remove=CLEAR,
        ),
        {"T_CIO_SITE": SITE, "T_CIO_KEY": KEY},
        {"T_CIO_SITE": SITE, "T_CIO_KEY": WRONG},
        big_batch=(30, 0),
        extra={"wide": True},
    ),
    Platform(
        "klaviyo",
        lambda: FakeKlaviyo(KEY),
        _settings(
            KlaviyoSettings,
            type="klaviyo",
            api_key_env="T_KLAVIYO",
            clear_on_remove=CLEAR,
            import_poll_s=0.01,
            import_wait_s=5,
        ),
        {"T_KLAVIYO": KEY},
        {"T_KLAVIYO": WRONG},
        big_batch=(55, 95_000),
        many_deletes=5,  # one profile per job, 3 jobs a second
    ),
    Platform(
        "iterable",
        lambda: FakeIterable(KEY),
        _settings(IterableSettings, type="iterable", api_key_env="T_ITERABLE", clear_on_remove=CLEAR),
        {"T_ITERABLE": KEY},
        {"T_ITERABLE": WRONG},
        big_batch=(100, 45_000),
        many_deletes=5,  # one user per request, 3 requests a second
    ),
    Platform(
        "hubspot",
        lambda: FakeHubSpot(KEY),
        _settings(HubSpotSettings, type="hubspot", access_token_env="T_HUBSPOT", clear_on_remove=CLEAR),
        {"T_HUBSPOT": KEY},
        {"T_HUBSPOT": WRONG},
        events=False,
        removes=False,  # upserts go by email, which a remove record does not carry
        profile_key=email_of,
        refusal_token=email_of,
        big_batch=(105, 10),
        delete_needs_contact=True,  # the GDPR delete goes by email (id_property)
        many_deletes=12,
    ),
    Platform(
        "segment",
        lambda: FakeSegment(KEY),
        _settings(SegmentSettings, type="segment", write_key_env="T_SEGMENT", clear_on_remove=CLEAR),
        {"T_SEGMENT": KEY},
        {"T_SEGMENT": WRONG},
        big_batch=(40, 20_000),
    ),
    Platform(
        "rudderstack",
        lambda: FakeRudderStack(KEY),
        _settings(
            RudderStackSettings,
            type="rudderstack",
            data_plane_url="https://unused.example",
            write_key_env="T_RUDDER",
            clear_on_remove=CLEAR,
        ),
        {"T_RUDDER": KEY},
        {"T_RUDDER": WRONG},
        big_batch=(200, 25_000),
    ),
    Platform(
        "google_audience",
        lambda: FakeGoogleAudience(KEY, user_list_id="456"),
        _settings(
            GoogleAudienceSettings,
            type="google_audience",
            access_token_env="T_GOOGLE",
            operating_account_id="123",
            user_list_id="456",
        ),
        {"T_GOOGLE": KEY},
        {"T_GOOGLE": WRONG},
        events=False,
        removes=False,  # Data Manager removes by identifiers, which a remove record does not carry
        audience="google",
        oversize_rejected=False,  # only hashes are sent
        refusal_token=lambda i: sha(email_of(i)),
        big_batch=(10_005, 0),
        delete_needs_contact=True,  # members are known only by hashed email and phone
    ),
    Platform(
        "meta_audience",
        lambda: FakeMetaAudience(KEY, audience_id="aud1"),
        _settings(MetaAudienceSettings, type="meta_audience", access_token_env="T_META", audience_id="aud1"),
        {"T_META": KEY},
        {"T_META": WRONG},
        events=False,
        audience="meta",
        oversize_rejected=False,
        refusal_token=lambda i: sha(f"c{i}"),
        big_batch=(10_005, 0),
    ),
    Platform(
        "webhook",
        lambda: FakeWebhook(HOOK_SECRET),
        _settings(WebhookSettings, type="webhook", url="https://unused.example", secret_env="T_HOOK"),
        {"T_HOOK": HOOK_SECRET},
        {"T_HOOK": WRONG_HOOK_SECRET},
        raw_payload=True,
        oversize_rejected=False,
    ),
]
SECRETS = [KEY, SITE, WRONG, HOOK_SECRET, WRONG_HOOK_SECRET, HOOK_SECRET.removeprefix("whsec_")]


@pytest.fixture(params=PLATFORMS, ids=[p.name for p in PLATFORMS])
def platform(request) -> Platform:
    return request.param


@pytest.fixture
def fake(platform):
    with platform.fake() as server:
        yield server


def destination(platform: Platform, fake: FakePlatform, env=None, **overrides) -> Destination:
    url = fake.url + FakeWebhook.path if platform.name == "webhook" else fake.url
    settings = platform.settings(url, **overrides)
    dest = REGISTRY[settings.type](settings, env=platform.env if env is None else env)
    assert dest.type == platform.name
    return dest


def rid(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def upsert(i: int, **extra: Any) -> Record:
    payload = {
        "onboarding_phase": "active",
        "onboarding_phase_entered_on": "2025-01-02",
        "orders_lifetime": i,
        "email": f" Customer{i}@Example.COM ",
        "phone": f"(415) 555-{i % 10000:04d}",
        **extra,
    }
    return Record(rid(f"u{i}{sorted(extra)}"), "upsert", f"c{i}", payload)


def event(i: int) -> Record:
    payload = {
        "event_name": "phase_entered",
        "journey": "onboarding",
        "phase": "active",
        "other_phase": "new",
        "occurred_on": "2025-01-02",
        "transition_id": f"t{i}",
    }
    return Record(rid(f"e{i}"), "event", f"c{i}", payload)


def remove(i: int) -> Record:
    return Record(rid(f"r{i}"), "remove", f"c{i}", {})


def write(dest: Destination, records: list[Record]) -> BatchResult:
    result = dest.write_batch("conformance", records)
    ids = {r.record_id for r in records}
    assert set(result.accepted) | set(result.rejected) == ids
    assert not set(result.accepted) & set(result.rejected)
    assert all(reason.strip() for reason in result.rejected.values())
    return result


def expected_profile(platform: Platform, record: Record) -> dict[str, Any]:
    if platform.raw_payload:
        return record.payload
    i = int(record.key[1:])
    attributes = {k: v for k, v in record.payload.items() if k not in ("email", "phone")}
    return {**attributes, "email": email_of(i), "phone": e164_of(i)}


def member_hashes(platform: Platform, indices) -> set[str]:
    phone = (lambda i: e164_of(i)) if platform.audience == "google" else (lambda i: e164_of(i)[1:])
    return {h for i in indices for h in (sha(email_of(i)), sha(phone(i)))}


def assert_delivered(platform: Platform, fake, upserts: list[Record], events: list[Record]) -> None:
    indices = [int(r.key[1:]) for r in upserts]
    if platform.audience:
        assert fake.members == member_hashes(platform, indices)
        return
    for i, record in zip(indices, upserts, strict=True):
        stored = fake.profiles.get(platform.profile_key(i), {})
        want = expected_profile(platform, record)
        assert {k: stored.get(k) for k in want} == want
    if platform.events:
        got = sorted(
            (e["key"], e["name"], e["phase"], e["transition_id"]) for e in getattr(fake, "events", [])
        )
        assert got == sorted((r.key, "phase_entered", "active", r.payload["transition_id"]) for r in events)


def state(fake) -> Any:
    if hasattr(fake, "members"):
        return sorted(fake.members)
    return copy.deepcopy(fake.profiles), sorted(
        sorted(map(str, e.items())) for e in getattr(fake, "events", [])
    )


def test_registry_covers_every_platform():
    assert {p.name for p in PLATFORMS} <= set(REGISTRY)


def test_check_accepts_the_right_credentials_and_refuses_others(platform, fake):
    dest = destination(platform, fake)
    dest.check()
    dest.close()

    wrong = destination(platform, fake, env=platform.wrong_env)
    with pytest.raises(PermanentError) as refused:
        wrong.check()  # some platforms (webhooks) can only tell on the first delivery
        write(wrong, [upsert(1)])
    assert not any(s in str(refused.value) for s in SECRETS)

    for var in platform.env:
        env = {k: v for k, v in platform.env.items() if k != var}
        with pytest.raises(PermanentError, match=var) as missing:
            destination(platform, fake, env=env).check()
        assert not any(s in str(missing.value) for s in SECRETS)


def test_a_batch_is_delivered_exactly(platform, fake):
    dest = destination(platform, fake)
    upserts, events = [upsert(i) for i in range(1, 8)], [event(i) for i in range(1, 5)]
    assert write(dest, upserts).rejected == {}
    result = write(dest, events)
    if platform.events:
        assert result.rejected == {}
    else:
        assert all("event" in reason for reason in result.rejected.values()) and len(result.rejected) == 4
    assert_delivered(platform, fake, upserts, events if platform.events else [])

    result = write(dest, [remove(1), remove(2)])
    if not platform.removes:
        assert len(result.rejected) == 2
        return
    assert result.rejected == {}
    if platform.audience:
        assert fake.members == member_hashes(platform, range(3, 8))
    else:
        for i in (1, 2):
            assert "onboarding_phase" not in fake.profiles.get(platform.profile_key(i), {})
        assert fake.profiles[platform.profile_key(3)]["onboarding_phase"] == "active"


# The webhook sends one request per record, so it has no request limit to split at.
@pytest.mark.parametrize(
    "platform", [p for p in PLATFORMS if p.big_batch[0]], ids=[p.name for p in PLATFORMS if p.big_batch[0]]
)
def test_a_batch_over_the_request_limits_is_split_and_all_delivered(platform, fake):
    count, blob = platform.big_batch
    dest = destination(platform, fake, timeout_s=30.0)
    if platform.extra.get("wide"):  # Customer.io caps values at 1,000 bytes: go wide instead
        extra = {f"note_{n}": "x" * 900 for n in range(30)}
    else:
        extra = {"blob": "x" * blob} if blob else {}
    upserts = [upsert(i, **extra) for i in range(count)]
    assert write(dest, upserts).rejected == {}
    assert fake.limit_violations == 0
    assert len([r for r in fake.requests if r.method != "GET"]) > 1
    assert_delivered(platform, fake, upserts, [])


def test_5xx_timeouts_and_dropped_connections_are_retried(platform, fake):
    # the timeout leaves room for a loaded machine: a request that times out after being
    # processed would duplicate events at platforms without dedup
    dest = destination(platform, fake, timeout_s=1.0)
    fake.fail_next(2, 503)
    fake.stall_next(1, 1.3)
    fake.drop_next(1)
    fake.fail_next(1, 502)
    fake.slow_next(1, 0.05)
    upserts, events = [upsert(i) for i in range(1, 6)], [event(i) for i in range(1, 4)]
    assert write(dest, upserts).rejected == {}
    write(dest, events)
    assert_delivered(platform, fake, upserts, events if platform.events else [])


def test_retry_budget_exhausted_is_transient(platform, fake):
    dest = destination(
        platform, fake, retry={"budget_s": 0.5, "initial_backoff_s": 0.01, "max_backoff_s": 0.02}
    )
    fake.fail_next(1000, 503)
    with pytest.raises(TransientError) as gave_up:
        dest.write_batch("conformance", [upsert(1)])
    assert not any(s in str(gave_up.value) for s in SECRETS)


def test_a_429_storm_is_ridden_out_within_the_limit(platform, fake):
    window = (4, 0.3)
    fake.windows = (window,)
    dest = destination(platform, fake, rate_limit=[{"requests": window[0], "seconds": window[1]}])
    fake.throttle_next(5)
    upserts = [upsert(i) for i in range(1, 25)]
    for start in range(0, len(upserts), 3):
        assert write(dest, upserts[start : start + 3]).rejected == {}
    assert_delivered(platform, fake, upserts, [])
    assert fake.throttled == 5  # only the injected ones: the client never earned one
    assert fake.peak(window[1]) <= window[0]


def test_invalid_records_are_rejected_with_a_reason_and_the_rest_delivered(platform, fake):
    dest = destination(platform, fake)
    good = [upsert(i) for i in (1, 2, 3, 4)]
    bad_email = Record(rid("bad-email"), "upsert", "c90", {**upsert(90).payload, "email": "not-an-address"})
    bad_phone = Record(rid("bad-phone"), "upsert", "c91", {**upsert(91).payload, "phone": "12"})
    oversize = upsert(92, notes="y" * 200_000)
    refused = upsert(93)
    fake.reject_keys.add(platform.refusal_token(93))
    result = write(dest, [good[0], bad_email, good[1], bad_phone, good[2], oversize, refused, good[3]])

    expected = {refused.record_id}
    if not platform.raw_payload:
        expected |= {bad_email.record_id, bad_phone.record_id}
        assert result.rejected[bad_email.record_id].startswith("email:")
        assert result.rejected[bad_phone.record_id].startswith("phone:")
    if platform.oversize_rejected:
        expected.add(oversize.record_id)
    assert set(result.rejected) == expected
    sent = [r for r in (bad_email, bad_phone, oversize) if r.record_id not in expected]
    assert_delivered(platform, fake, good + sent, [])


def test_a_resent_batch_creates_no_duplicates_where_the_platform_dedups(platform, fake):
    dest = destination(platform, fake)
    upserts, events = [upsert(i) for i in range(1, 5)], [event(i) for i in range(1, 5)]
    write(dest, upserts)
    write(dest, events)
    before = state(fake)
    write(dest, upserts)  # the engine crashed before recording these batches
    write(dest, events)
    if dest.capabilities.dedupes_by_record_id:
        assert state(fake) == before
    else:  # the platform keeps the replayed events: the flag must say so
        assert len(fake.events) == 2 * len(events)


def test_secrets_never_appear_in_errors_reasons_or_logs(platform, fake, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    dest = destination(platform, fake)
    seen.append(repr(dest))
    fake.fail_next(2, 500)
    fake.throttle_next(1)
    result = write(dest, [upsert(1), upsert(2, email="broken")])
    seen += result.rejected.values()
    for env in (platform.wrong_env, {}):
        try:
            other = destination(platform, fake, env=env)
            other.check()
            write(other, [upsert(3)])
        except PermanentError as exc:
            seen.append(str(exc))
    seen.append(caplog.text)
    leaks = [s for s in SECRETS for text in seen if s in text]
    assert not leaks


# -- deletion requests ---------------------------------------------------------------------
DELETERS = [p for p in PLATFORMS if REGISTRY[p.name].capabilities.supports_delete]
NON_DELETERS = [p for p in PLATFORMS if not REGISTRY[p.name].capabilities.supports_delete]


def delete(i: int, **payload: Any) -> Record:
    payload = {"email": f" Customer{i}@Example.COM ", "phone": f"(415) 555-{i % 10000:04d}", **payload}
    return Record(rid(f"d{i}{sorted(payload.items())}"), "delete", f"c{i}", payload)


def assert_erased(platform: Platform, fake, gone, kept) -> None:
    """The customers in `gone` are no longer at the platform, those in `kept` still are."""
    gone, kept = list(gone), list(kept)
    if platform.audience:
        assert fake.members == member_hashes(platform, kept)
        return
    assert not [i for i in gone if platform.profile_key(i) in fake.profiles]
    assert all(platform.profile_key(i) in fake.profiles for i in kept)
    if platform.events and not platform.raw_payload:
        assert not {e["key"] for e in fake.events} & {f"c{i}" for i in gone}


def test_every_destination_that_cannot_delete_is_listed_with_a_reason():
    cannot = {name for name, cls in REGISTRY.items() if not cls.capabilities.supports_delete}
    assert cannot == set(DELETE_UNSUPPORTED)
    for reason in DELETE_UNSUPPORTED.values():
        assert reason.startswith("delete: ") and "cannot delete" in reason


@pytest.mark.parametrize("platform", NON_DELETERS, ids=[p.name for p in NON_DELETERS])
def test_a_destination_that_cannot_delete_rejects_deletes_with_its_reason(platform, fake):
    dest = destination(platform, fake)
    result = write(dest, [upsert(1), delete(2)])
    assert result.rejected == {delete(2).record_id: DELETE_UNSUPPORTED[platform.name]}
    assert_delivered(platform, fake, [upsert(1)], [])
    assert not any(b'"c2"' in r.body for r in fake.requests)  # nothing of the delete was sent


@pytest.mark.parametrize("platform", DELETERS, ids=[p.name for p in DELETERS])
def test_a_delete_erases_the_customer_at_the_platform(platform, fake):
    dest = destination(platform, fake)
    assert write(dest, [upsert(i) for i in range(1, 5)]).rejected == {}
    if platform.events:
        assert write(dest, [event(1), event(3)]).rejected == {}
    fake.fail_next(1, 503)  # a delete is retried like any request
    assert write(dest, [delete(1), delete(2)]).rejected == {}
    assert_erased(platform, fake, gone=[1, 2], kept=[3, 4])


@pytest.mark.parametrize("platform", DELETERS, ids=[p.name for p in DELETERS])
def test_deleting_an_unknown_or_already_deleted_customer_succeeds(platform, fake):
    dest = destination(platform, fake)
    assert write(dest, [upsert(1), upsert(2)]).rejected == {}
    before = state(fake)
    assert write(dest, [delete(77)]).rejected == {}
    assert state(fake) == before
    assert write(dest, [delete(1)]).rejected == {}
    assert write(dest, [delete(1)]).rejected == {}  # the engine resends after a crash
    assert_erased(platform, fake, gone=[1, 77], kept=[2])


@pytest.mark.parametrize("platform", DELETERS, ids=[p.name for p in DELETERS])
def test_a_delete_without_identifiers_goes_by_the_key_or_is_rejected_with_a_reason(platform, fake):
    dest = destination(platform, fake)
    assert write(dest, [upsert(1), upsert(2)]).rejected == {}
    bare = Record(rid("bare-delete"), "delete", "c1", {"email": None})
    result = write(dest, [bare])
    if platform.delete_needs_contact:
        assert list(result.rejected) == [bare.record_id]
        assert "email" in result.rejected[bare.record_id]
        assert_erased(platform, fake, gone=[], kept=[1, 2])
    else:
        assert result.rejected == {}
        assert_erased(platform, fake, gone=[1], kept=[2])


@pytest.mark.parametrize("platform", DELETERS, ids=[p.name for p in DELETERS])
def test_a_mixed_batch_with_deletes_is_applied_whole(platform, fake):
    dest = destination(platform, fake)
    assert write(dest, [upsert(i) for i in (4, 5, 6)]).rejected == {}
    fresh = [upsert(1), upsert(2), upsert(3)]
    batch = [fresh[0], delete(5), fresh[1], upsert(6, onboarding_phase="churned"), delete(6), fresh[2]]
    if platform.events:
        batch.insert(1, event(1))
    if platform.removes:
        batch.append(remove(4))
    assert write(dest, batch).rejected == {}

    if platform.audience:
        assert_erased(platform, fake, gone=[5, 6], kept=[1, 2, 3] + ([] if platform.removes else [4]))
        return
    assert_delivered(platform, fake, fresh, [event(1)] if platform.events else [])
    if platform.raw_payload:  # the receiver's state forgets a removed customer altogether
        assert_erased(platform, fake, gone=[4, 5, 6], kept=[1, 2, 3])
        return
    assert_erased(platform, fake, gone=[5, 6], kept=[1, 2, 3, 4])
    cleared = "onboarding_phase" not in fake.profiles[platform.profile_key(4)]
    assert cleared == platform.removes


@pytest.mark.parametrize("platform", DELETERS, ids=[p.name for p in DELETERS])
def test_many_deletes_keep_to_the_platform_limits(platform, fake):
    n = platform.many_deletes
    dest = destination(platform, fake, timeout_s=30.0)
    assert write(dest, [upsert(i) for i in range(n)]).rejected == {}
    assert write(dest, [delete(i) for i in range(n)]).rejected == {}
    assert fake.limit_violations == 0
    assert fake.throttled == 0  # the client kept to every window the fake enforces
    assert_erased(platform, fake, gone=range(n), kept=[])


@pytest.mark.parametrize(
    "platform",
    [p for p in DELETERS if p.delete_refusable],
    ids=[p.name for p in DELETERS if p.delete_refusable],
)
def test_a_refused_delete_is_rejected_with_a_reason_and_the_others_applied(platform, fake):
    dest = destination(platform, fake)
    assert write(dest, [upsert(i) for i in (1, 2, 3)]).rejected == {}
    fake.reject_keys.add(platform.refusal_token(2))
    result = write(dest, [delete(1), delete(2), delete(3)])
    assert list(result.rejected) == [delete(2).record_id]
    assert not any(s in result.rejected[delete(2).record_id] for s in SECRETS)
    assert_erased(platform, fake, gone=[1, 3], kept=[2])


def test_braze_sends_at_most_50_external_ids_per_delete_request():
    with FakeBraze(KEY) as fake:
        platform = next(p for p in PLATFORMS if p.name == "braze")
        dest = destination(platform, fake)
        assert write(dest, [delete(i) for i in range(120)]).rejected == {}
        sizes = [len(r.json()["external_ids"]) for r in fake.calls("/users/delete")]
        assert sizes and max(sizes) <= 50 and sum(sizes) == 120 and len(sizes) == 3


def test_braze_key_without_the_delete_permission_is_a_permanent_error():
    with FakeBraze(KEY, permissions=frozenset({"users.track"})) as fake:
        dest = destination(next(p for p in PLATFORMS if p.name == "braze"), fake)
        assert write(dest, [upsert(1)]).rejected == {}
        with pytest.raises(PermanentError, match="users.delete") as refused:
            dest.write_batch("conformance", [delete(1)])
        assert not any(s in str(refused.value) for s in SECRETS)
        assert "c1" in fake.profiles


def test_klaviyo_requests_one_profile_per_deletion_job_within_its_rate():
    with FakeKlaviyo(KEY) as fake:
        dest = destination(next(p for p in PLATFORMS if p.name == "klaviyo"), fake, timeout_s=30.0)
        assert write(dest, [upsert(i) for i in range(6)]).rejected == {}
        assert write(dest, [delete(i) for i in range(6)]).rejected == {}
        jobs = fake.calls("/api/data-privacy-deletion-jobs")
        assert len(jobs) == 6
        for job in jobs:
            target = job.json()["data"]["attributes"]["profile"]["data"]
            named = {"id": target.get("id"), **target["attributes"]}
            assert [k for k, v in named.items() if v] == ["id"]  # the profile found by key, alone
        assert fake.peak(1.0, "/api/data-privacy-deletion-jobs") <= 3
        assert fake.throttled == 0 and fake.profiles == {}
