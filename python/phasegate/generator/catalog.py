"""Fixed vocabularies (names, countries, SKUs, paths) and the marketing calendar of a window.

Everything here is a pure function of the config, so every chunk sees the same catalog.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

import numpy as np
import pyarrow as pa

from .config import GeneratorConfig

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 60 * US_PER_MINUTE
US_PER_DAY = 24 * US_PER_HOUR

# fmt: off
EVENT_TYPES = (
    "page_view", "app_open", "email_sent", "email_open", "email_click", "sms_sent",
    "sms_click", "push_open", "add_to_cart", "checkout", "order",
)
# fmt: on
UNKNOWN_EVENT_TYPES = ("legacy_tracking_ping", "heartbeat_v1", "screen_view_legacy", "debug_beacon")
ALL_EVENT_TYPES = EVENT_TYPES + UNKNOWN_EVENT_TYPES
ET = {name: code for code, name in enumerate(ALL_EVENT_TYPES)}
# Events emitted by client SDKs: the ones that suffer clock skew and lost identifiers.
CLIENT_EVENT_CODES = np.array(
    [ET[t] for t in ("page_view", "app_open", "email_open", "email_click", "sms_click", "push_open")],
    dtype=np.int8,
)

CHANNELS = ("web", "app", "email", "sms", "push")
CH = {name: code for code, name in enumerate(CHANNELS)}
CONSENT_CHANNELS = ("email", "sms", "push", "ads")

COUNTRIES = ("US", "GB", "DE", "FR", "NL")
COUNTRY_WEIGHTS = np.array([0.45, 0.20, 0.15, 0.12, 0.08])
# Per country: E.164 template, local template, national-number prefixes (subscriber = 7 digits).
PHONE_PLANS = {
    "US": ("+1DDDDDDDDDD", "(DDD) DDD-DDDD", ("415", "212", "312", "617", "206", "512", "303")),
    "GB": ("+44DDDDDDDDDD", "0DDDD DDDDDD", ("770", "791", "740", "750", "786")),
    "DE": ("+49DDDDDDDDDDD", "0DDD DDDDDDDD", ("1512", "1601", "1701", "1763", "1579")),
    "FR": ("+33DDDDDDDDD", "0D DD DD DD DD", ("61", "62", "65", "67", "78")),
    "NL": ("+31DDDDDDDDD", "0D DDDDDDDD", ("61", "62", "64", "65")),
}

# fmt: off
FIRST_NAMES = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "susan", "oliver", "amelia", "harry", "isla", "george", "ava",
    "lukas", "mia", "leon", "hannah", "finn", "emma", "louis", "jade", "hugo", "chloe", "daan",
    "sophie", "sem", "julia", "noah", "olivia", "liam", "lea", "paul", "anna",
)
LAST_NAMES = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "wilson",
    "taylor", "evans", "thomas", "roberts", "walker", "mueller", "schmidt", "schneider",
    "fischer", "weber", "martin", "bernard", "dubois", "durand", "lefebvre", "devries",
    "jansen", "bakker", "visser", "smit", "meyer", "wagner", "moreau", "laurent", "clarke",
)
EMAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de", "web.de",
    "orange.fr", "free.fr", "ziggo.nl", "btinternet.com", "proton.me",
)
# fmt: on
EMAIL_DOMAIN_WEIGHTS = np.array([0.34, 0.1, 0.1, 0.09, 0.09, 0.06, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03])
JUNK_EMAILS = ("test@test.com", "noreply@example.com", "a@a.com", "none@none.com", "asdf@asdf.com")
MALFORMED_PHONES = ("12", "phone", "n/a", "000", "+1", "none", "123-abc", "0")

N_SKUS = 500
APP_VERSIONS = ("5.0.2", "5.1.0", "5.1.3", "5.2.0", "5.2.1", "6.0.0")
# fmt: off
STATIC_PATHS = (
    "/", "/search", "/cart", "/account", "/sale", "/new-in", "/help", "/category/shoes",
    "/category/bags", "/category/outerwear", "/category/accessories", "/category/home",
)
# fmt: on


def _json(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass(frozen=True)
class Window:
    """Observation window in microseconds since the epoch: [start, end)."""

    start: int
    end: int

    @classmethod
    def from_config(cls, cfg: GeneratorConfig) -> Window:
        # The window covers end_date itself, so "today" includes today's events.
        end_dt = datetime.combine(cfg.end_date + timedelta(days=1), time.min, tzinfo=timezone.utc)
        end = int(end_dt.timestamp()) * US_PER_SECOND
        return cls(start=end - cfg.days * US_PER_DAY, end=end)


def _schedule(window: Window, rules: list[tuple[int, int, int | None, str]], prefix: str):
    """Campaign send times from (weekday, hour, iso_week_parity or None, name) rules."""
    times, names = [], []
    first = datetime.fromtimestamp(window.start // US_PER_SECOND, tz=timezone.utc).date()
    n_days = -(-(window.end - window.start) // US_PER_DAY) + 1
    for offset in range(n_days):
        day = first + timedelta(days=offset)
        for weekday, hour, parity, name in rules:
            if day.weekday() != weekday:
                continue
            if parity is not None and day.isocalendar()[1] % 2 != parity:
                continue
            at = datetime.combine(day, time(hour), tzinfo=timezone.utc)
            us = int(at.timestamp()) * US_PER_SECOND
            if window.start <= us < window.end:
                times.append(us)
                names.append(f"{prefix}_{day.isoformat()}_{name}")
    return np.array(times, dtype=np.int64), names


class Catalog:
    """Campaign calendars plus one shared vocabulary of event property JSON strings.

    Events store an index into ``properties``; the string column is a single ``take``.
    """

    def __init__(self, window: Window) -> None:
        self.window = window
        # ~1.5 emails a week, an SMS every other week, two push campaigns a week.
        self.email_times, email_names = _schedule(
            window, [(1, 15, None, "weekly"), (4, 16, 0, "promo")], "email"
        )
        self.sms_times, sms_names = _schedule(window, [(3, 18, 1, "flash")], "sms")
        self.push_times, push_names = _schedule(
            window, [(0, 17, None, "digest"), (5, 10, None, "weekend")], "push"
        )

        vocab: list[str] = []

        def section(values: list[str]) -> int:
            vocab.extend(values)
            return len(vocab) - len(values)

        skus = [f"SKU-{i:05d}" for i in range(N_SKUS)]
        self.sku_props = section([_json({"sku": s}) for s in skus])
        paths = list(STATIC_PATHS) + [f"/products/{s.lower()}" for s in skus[:60]]
        self.path_props = section([_json({"path": p}) for p in paths])
        self.n_paths = len(paths)
        self.app_props = section([_json({"app_version": v}) for v in APP_VERSIONS])
        self.welcome_prop = section([_json({"campaign": "email_welcome"})])
        self.email_props = section([_json({"campaign": c}) for c in email_names])
        self.email_landing_props = section(
            [_json({"path": "/landing", "utm_source": "email", "utm_campaign": c}) for c in email_names]
        )
        self.sms_props = section([_json({"campaign": c}) for c in sms_names])
        self.sms_landing_props = section(
            [_json({"path": "/landing", "utm_source": "sms", "utm_campaign": c}) for c in sms_names]
        )
        self.push_props = section([_json({"campaign": c}) for c in push_names])
        self.properties = pa.array(vocab, type=pa.string())

        # Popularity follows a Zipf-like curve: a few SKUs sell most.
        weights = 1.0 / np.arange(1, N_SKUS + 1) ** 0.9
        self.sku_weights = weights / weights.sum()
        path_w = np.concatenate([np.full(len(STATIC_PATHS), 3.0), 1.0 / np.arange(1, 61) ** 0.7])
        self.path_weights = path_w / path_w.sum()
