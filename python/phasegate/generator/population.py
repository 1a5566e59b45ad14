"""Customer profiles of one chunk: ids, contact details, devices, consent timelines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import dirty as faults
from .catalog import (
    CONSENT_CHANNELS,
    COUNTRIES,
    COUNTRY_WEIGHTS,
    EMAIL_DOMAIN_WEIGHTS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PHONE_PLANS,
    US_PER_DAY,
    US_PER_MINUTE,
    Window,
)
from .config import GeneratorConfig
from .strings import dec_digits, fill_template, mix64, prefixed_numbers, scatter, uuid_strings

NEVER = np.iinfo(np.int64).max
MAX_ANON = 3  # anonymous-id slots per customer; slot index = customer row * MAX_ANON + k
SHARED_DEVICE_BASE = 1 << 62  # counter space for pool devices, disjoint from customer devices

# channel -> (grant at signup, later opt-in, revoke after grant, re-grant after revoke)
CONSENT_PROBS = {
    "email": (0.85, 0.30, 0.12, 0.25),
    "sms": (0.35, 0.08, 0.15, 0.20),
    "push": (0.45, 0.10, 0.20, 0.20),
    "ads": (0.60, 0.05, 0.10, 0.30),
}
HAS_EMAIL = 0.96
HAS_PHONE = 0.70


def salt_for(seed: int, purpose: int) -> int:
    """Seed-dependent salt so different seeds give different id strings."""
    return int(mix64(np.array([seed], dtype=np.uint64), purpose)[0])


def uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (rng.random(len(lo)) * np.maximum(hi - lo, 0)).astype(np.int64)


@dataclass
class Consent:
    """One channel's timeline: granted on [granted, revoked) and again on [regranted, end)."""

    granted: np.ndarray
    revoked: np.ndarray
    regranted: np.ndarray

    def intervals(self, end: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [
            (self.granted, np.minimum(self.revoked, end)),
            (self.regranted, np.full(len(self.granted), end, dtype=np.int64)),
        ]


@dataclass
class Population:
    gidx: np.ndarray  # global 0-based customer index
    customer_id: pa.Array
    signup: np.ndarray
    country: np.ndarray  # int8 into COUNTRIES
    email: pa.Array
    email_kind: np.ndarray  # dirty.EMAIL_*
    phone: pa.Array
    phone_kind: np.ndarray  # dirty.PHONE_*
    app_share: np.ndarray  # share of sessions in the app rather than on the web
    n_anon: np.ndarray
    anon_login: np.ndarray  # (n, MAX_ANON) int64, NEVER for unused slots
    anon_first_seen: np.ndarray  # (n, MAX_ANON)
    anon_ids: pa.Array  # n * MAX_ANON strings
    device_ids: pa.Array  # n * MAX_ANON strings, one device per anonymous id
    shared_device: np.ndarray  # bool per customer
    shared_pool_index: np.ndarray
    consent: dict[str, Consent]

    def __len__(self) -> int:
        return len(self.gidx)


def _emails(rng: np.random.Generator, gidx: np.ndarray, cfg: GeneratorConfig):
    n = len(gidx)
    first = pa.array(FIRST_NAMES).take(pa.array(rng.integers(0, len(FIRST_NAMES), n)))
    last = pa.array(LAST_NAMES).take(pa.array(rng.integers(0, len(LAST_NAMES), n)))
    domain = pa.array(EMAIL_DOMAINS).take(pa.array(rng.choice(len(EMAIL_DOMAINS), n, p=EMAIL_DOMAIN_WEIGHTS)))
    # The customer number makes every legitimate address unique: no accidental merges.
    number = pc.cast(pa.array(gidx + 1), pa.string())
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    local = pc.choose(
        pa.array(rng.integers(0, 3, n).astype(np.int8)),
        pc.binary_join_element_wise(first, ".", last, number, ""),
        pc.binary_join_element_wise(first, "_", number, ""),
        pc.binary_join_element_wise(initial, ".", last, number, ""),
    )
    kind = faults.email_kinds(rng, rng.random(n) < HAS_EMAIL, cfg.dirty)
    return faults.render_emails(rng, kind, first, local, domain), kind


def _phones(rng: np.random.Generator, gidx: np.ndarray, country: np.ndarray, cfg: GeneratorConfig):
    n = len(gidx)
    kind = faults.phone_kinds(rng, rng.random(n) < HAS_PHONE, cfg.dirty)
    # Bijective on [0, 10^7): unique subscriber numbers for up to 10M customers.
    subscriber = (gidx * 4_393_597 + 2_718_281) % 10_000_000
    prefix_pick = rng.integers(0, 1 << 30, n)
    parts: list[tuple[np.ndarray, pa.Array]] = []
    for code, iso in enumerate(COUNTRIES):
        e164_tpl, local_tpl, prefixes = PHONE_PLANS[iso]
        prefix_digits = np.array([list(p.encode()) for p in prefixes], dtype=np.uint8)
        for fmt_kind, tpl in ((faults.PHONE_E164, e164_tpl), (faults.PHONE_LOCAL, local_tpl)):
            rows = np.flatnonzero((country == code) & (kind == fmt_kind))
            digits = np.hstack(
                [prefix_digits[prefix_pick[rows] % len(prefixes)], dec_digits(subscriber[rows], 7)]
            )
            parts.append((rows, fill_template(tpl, digits)))
    rows = np.flatnonzero(kind == faults.PHONE_MALFORMED)
    parts.append((rows, faults.malformed_phones(rng, len(rows))))
    rows = np.flatnonzero(kind == faults.PHONE_NONE)
    parts.append((rows, pa.nulls(len(rows), pa.string())))
    return scatter(parts, n), kind


def _consent(
    rng: np.random.Generator,
    eligible: np.ndarray,
    signup: np.ndarray,
    end: int,
    probs: tuple[float, float, float, float],
) -> Consent:
    n = len(signup)
    at_signup, later, revoke, regrant = probs
    end_arr = np.full(n, end, dtype=np.int64)
    u = rng.random(n)
    granted = np.where(u < at_signup, signup, NEVER)
    late = (u >= at_signup) & (rng.random(n) < later)
    granted = np.where(late, uniform_between(rng, signup, end_arr), granted)
    granted = np.where(eligible, granted, NEVER)
    revoked = np.where(
        (granted < NEVER) & (rng.random(n) < revoke),
        uniform_between(rng, np.minimum(granted, end), end_arr),
        NEVER,
    )
    regranted = np.where(
        (revoked < NEVER) & (rng.random(n) < regrant),
        uniform_between(rng, np.minimum(revoked, end), end_arr),
        NEVER,
    )
    return Consent(granted, revoked, regranted)


def build_population(
    rng: np.random.Generator,
    cfg: GeneratorConfig,
    window: Window,
    first_index: int,
    n: int,
    id_width: int,
) -> Population:
    gidx = np.arange(first_index, first_index + n, dtype=np.int64)
    signup = window.start + (rng.random(n) * (window.end - window.start)).astype(np.int64)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS).astype(np.int8)
    email, email_kind = _emails(rng, gidx, cfg)
    phone, phone_kind = _phones(rng, gidx, country, cfg)

    # Anonymous ids: slot 0 logs in at signup; extra browsers/devices log in later.
    n_anon = rng.choice([1, 2, 3], n, p=[0.55, 0.30, 0.15]).astype(np.int8)
    end_arr = np.full(n, window.end, dtype=np.int64)
    login = np.full((n, MAX_ANON), NEVER, dtype=np.int64)
    login[:, 0] = signup
    for k in range(1, MAX_ANON):
        later = uniform_between(rng, signup, end_arr)
        login[:, k] = np.where(n_anon > k, later, NEVER)
    browse_lead = (rng.exponential(2.0, (n, MAX_ANON)) * US_PER_DAY).astype(np.int64)
    first_seen = np.where(login < NEVER, login - browse_lead - US_PER_MINUTE, NEVER)

    slot_counter = (gidx[:, None] * 4 + np.arange(MAX_ANON)).ravel()
    shared, pool_index = faults.shared_device_pool(rng, n, cfg.customers, cfg.dirty.shared_device_rate)
    device_counter = slot_counter.astype(np.uint64)
    device_counter[np.flatnonzero(shared) * MAX_ANON] = SHARED_DEVICE_BASE + pool_index.astype(np.uint64)

    consent = {
        "email": _consent(rng, email_kind != faults.EMAIL_NONE, signup, window.end, CONSENT_PROBS["email"]),
        "sms": _consent(rng, phone_kind != faults.PHONE_NONE, signup, window.end, CONSENT_PROBS["sms"]),
    }
    for channel in CONSENT_CHANNELS[2:]:
        consent[channel] = _consent(rng, np.ones(n, bool), signup, window.end, CONSENT_PROBS[channel])

    return Population(
        gidx=gidx,
        customer_id=prefixed_numbers("c", gidx + 1, id_width),
        signup=signup,
        country=country,
        email=email,
        email_kind=email_kind,
        phone=phone,
        phone_kind=phone_kind,
        app_share=rng.beta(1.5, 2.0, n),
        n_anon=n_anon,
        anon_login=login,
        anon_first_seen=first_seen,
        anon_ids=uuid_strings(slot_counter, salt_for(cfg.seed, 0xA11)),
        device_ids=uuid_strings(device_counter, salt_for(cfg.seed, 0xDE1), upper=True),
        shared_device=shared,
        shared_pool_index=pool_index,
        consent=consent,
    )
