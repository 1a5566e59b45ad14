"""BG/NBD purchase process and the behavioural events around it, vectorised per chunk.

Engagement (sessions, opens, clicks) scales with the customer's purchase rate while alive
and fades out after dropout, so activity signals carry real information about churn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import (
    APP_VERSIONS,
    CH,
    ET,
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
    US_PER_SECOND,
    Catalog,
)
from .config import GeneratorConfig
from .dirty import EMAIL_UNNORMALISED, EMAIL_VALID, PHONE_E164, PHONE_LOCAL
from .events import EventBuffer, Events
from .population import MAX_ANON, NEVER, Population

FADE_FLOOR = 0.05  # residual engagement long after dropout
FADE_TAU_DAYS = 21.0  # e-folding time of engagement after dropout
LOGGED_OUT_SHARE = 0.06


@dataclass
class Purchases:
    lam: np.ndarray  # purchases per day
    p: np.ndarray  # dropout probability after each purchase
    order_cust: np.ndarray  # chunk row per order, ordered by purchase index
    order_time: np.ndarray  # int64 microseconds
    n_orders: np.ndarray
    dropout_at: np.ndarray  # int64, NEVER while alive

    @property
    def dropped(self) -> np.ndarray:
        return self.dropout_at < NEVER


def simulate_purchases(
    rng: np.random.Generator, cfg: GeneratorConfig, signup: np.ndarray, window_end: int
) -> Purchases:
    n = len(signup)
    lam = rng.gamma(cfg.r, 1.0 / cfg.alpha, n)
    p = rng.beta(cfg.a, cfg.b, n)
    # Days relative to each customer's signup keep float precision far below a microsecond.
    horizon = (window_end - signup) / US_PER_DAY
    t = np.zeros(n)
    active = np.arange(n)
    dropout_days = np.full(n, np.nan)
    custs, times = [], []
    with np.errstate(divide="ignore", over="ignore"):
        while active.size:
            t_next = t[active] + rng.exponential(1.0, active.size) / lam[active]
            inside = t_next < horizon[active]
            active, t_next = active[inside], t_next[inside]
            t[active] = t_next
            custs.append(active)
            times.append(t_next)
            drop = rng.random(active.size) < p[active]
            dropout_days[active[drop]] = t_next[drop]
            active = active[~drop]
    order_cust = np.concatenate(custs) if custs else np.empty(0, np.int64)
    order_days = np.concatenate(times) if times else np.empty(0)
    order_time = signup[order_cust] + np.round(order_days * US_PER_DAY).astype(np.int64)
    dropped = ~np.isnan(dropout_days)
    dropout_at = np.full(n, NEVER, dtype=np.int64)
    dropout_at[dropped] = signup[dropped] + np.round(dropout_days[dropped] * US_PER_DAY).astype(np.int64)
    return Purchases(
        lam=lam,
        p=p,
        order_cust=order_cust,
        order_time=order_time,
        n_orders=np.bincount(order_cust, minlength=n),
        dropout_at=dropout_at,
    )


def _poisson_uniform(rng, start, stop, rate_per_day):
    """Homogeneous Poisson points on [start, stop) per customer -> (row, time)."""
    length = np.maximum(stop - start, 0)
    counts = rng.poisson(rate_per_day * length / US_PER_DAY)
    row = np.repeat(np.arange(len(start)), counts)
    return row, start[row] + (rng.random(len(row)) * length[row]).astype(np.int64)


def _poisson_decay(rng, start, stop, rate_per_day, tau_days):
    """Poisson points with intensity rate * exp(-(t - start) / tau) on [start, stop)."""
    length_days = np.maximum(stop - start, 0) / US_PER_DAY
    mass = 1.0 - np.exp(-length_days / tau_days)
    counts = rng.poisson(rate_per_day * tau_days * mass)
    row = np.repeat(np.arange(len(start)), counts)
    offset_days = -tau_days * np.log1p(-rng.random(len(row)) * mass[row])
    return row, start[row] + (offset_days * US_PER_DAY).astype(np.int64)


def _schedule_hits(schedule, start, stop):
    """Every (row, schedule index) with start <= schedule[i] < stop."""
    lo = np.searchsorted(schedule, start, "left")
    hi = np.searchsorted(schedule, stop, "left")
    counts = np.maximum(hi - lo, 0)
    row = np.repeat(np.arange(len(start)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return row, np.arange(len(row)) - first + lo[row]


class Behaviour:
    """Generates all events of a chunk into an EventBuffer."""

    def __init__(self, rng: np.random.Generator, pop: Population, buys: Purchases, catalog: Catalog) -> None:
        self.rng, self.pop, self.buys, self.cat = rng, pop, buys, catalog
        self.end = catalog.window.end
        self.out = EventBuffer(self.end)
        # Baseline propensity to open/click: higher for frequent buyers.
        self.engagement = 0.10 + 0.50 * buys.lam / (buys.lam + 0.05)
        self.alive_until = np.minimum(buys.dropout_at, self.end)

    def fade(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        since = np.maximum(t - self.buys.dropout_at[rows], 0) / US_PER_DAY
        faded = FADE_FLOOR + (1 - FADE_FLOOR) * np.exp(-since / FADE_TAU_DAYS)
        return np.where(t < self.buys.dropout_at[rows], 1.0, faded)

    def pick_anon(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """A random anonymous id of the customer that was already logged in at ``t``."""
        k = (self.rng.random(len(rows)) * self.pop.n_anon[rows]).astype(np.int64)
        slot = rows * MAX_ANON + k
        logged_in = self.pop.anon_login.ravel()[slot] <= t
        return np.where(logged_in, slot, rows * MAX_ANON)

    def run(self) -> Events:
        self.anonymous_browsing()
        self.sessions()
        self.orders()
        self.email()
        self.sms()
        self.push()
        ev = self.out.build()
        # Collector latency: mostly seconds, sometimes minutes, capped at an hour.
        delay = np.minimum(np.exp(self.rng.normal(np.log(2.0), 1.3, len(ev))), 3600.0)
        ev.received = ev.occurred + (delay * US_PER_SECOND).astype(np.int64)
        return ev

    def page_views(self, rows, t, anon, user, prop=None):
        if prop is None:
            prop = self.cat.path_props + self.rng.choice(self.cat.n_paths, len(rows), p=self.cat.path_weights)
        self.out.add(rows, t, ET["page_view"], CH["web"], anon=anon, user=user, prop=prop)

    def anonymous_browsing(self):
        """Pre-login visits of every anonymous id: no user_id yet."""
        pop = self.pop
        login, first = pop.anon_login.ravel(), pop.anon_first_seen.ravel()
        used = np.flatnonzero(login < NEVER)
        slot_row, t = _poisson_uniform(self.rng, first[used], login[used], 2.5 * 0.5)
        slot = used[slot_row]
        self.page_views(slot // MAX_ANON, t, slot, False)

    def sessions(self):
        rng, buys = self.rng, self.buys
        rate = 0.02 + 1.2 * buys.lam
        alive_rows, alive_t = _poisson_uniform(rng, self.pop.signup, self.alive_until, rate)
        start = np.minimum(buys.dropout_at, self.end)
        end = np.full(len(start), self.end, dtype=np.int64)
        fade_rows, fade_t = _poisson_decay(rng, start, end, rate * (1 - FADE_FLOOR), FADE_TAU_DAYS)
        floor_rows, floor_t = _poisson_uniform(rng, start, end, rate * FADE_FLOOR)
        rows = np.concatenate([alive_rows, fade_rows, floor_rows])
        t = np.concatenate([alive_t, fade_t, floor_t])
        anon = self.pick_anon(rows, t)
        user = rng.random(len(rows)) >= LOGGED_OUT_SHARE
        in_app = rng.random(len(rows)) < self.pop.app_share[rows]

        app = np.flatnonzero(in_app)
        version = self.cat.app_props + rng.integers(0, len(APP_VERSIONS), len(app))
        self.out.add(
            rows[app],
            t[app],
            ET["app_open"],
            CH["app"],
            anon=anon[app],
            user=user[app],
            prop=version,
        )

        web = np.flatnonzero(~in_app)
        views = 1 + rng.poisson(1.5, len(web))
        session = np.repeat(web, views)
        gaps = rng.exponential(45.0, len(session)) * US_PER_SECOND
        starts = np.repeat(np.cumsum(views) - views, views)
        # First view at the session start, later ones spaced by the cumulative gaps.
        cum = np.cumsum(gaps)
        offset = cum - cum[starts] if len(session) else cum
        self.page_views(rows[session], t[session] + offset.astype(np.int64), anon[session], user[session])

    def orders(self):
        """Each order is preceded by add_to_cart and checkout minutes before, same channel."""
        rng, pop, buys = self.rng, self.pop, self.buys
        rows, t = buys.order_cust, buys.order_time
        n = len(rows)
        if n == 0:
            return
        channel = np.where(rng.random(n) < pop.app_share[rows], CH["app"], CH["web"])
        anon = self.pick_anon(rows, t)
        sku = self.cat.sku_props + rng.choice(len(self.cat.sku_weights), n, p=self.cat.sku_weights)
        # The funnel fits between the previous order (or signup) and this one, so funnels of
        # consecutive orders never interleave.
        by_time = np.lexsort((t, rows))
        prev_sorted = np.concatenate([[0], t[by_time][:-1]])
        first = np.concatenate([[True], np.diff(rows[by_time]) != 0])
        prev_sorted[first] = pop.signup[rows[by_time][first]]
        prev = np.empty(n, dtype=np.int64)
        prev[by_time] = prev_sorted
        lead = np.minimum(rng.uniform(5, 30, n) * US_PER_MINUTE, 0.9 * (t - prev))
        cart_at = t - np.maximum(lead, 2).astype(np.int64)
        checkout_at = t - np.maximum(lead * rng.uniform(0.1, 0.6, n), 1).astype(np.int64)
        amount = np.maximum(np.round(rng.lognormal(3.7, 0.65, n), 2), 1.0)
        for etype, at in (("add_to_cart", cart_at), ("checkout", checkout_at)):
            self.out.add(rows, at, ET[etype], channel, anon=anon, prop=sku)
        self.out.add(rows, t, ET["order"], channel, anon=anon, prop=sku, amount=amount)

    def _sends(self, schedule, consent, jitter_minutes):
        """Campaign sends to everyone consented at send time, regardless of activity."""
        rows_parts, idx_parts = [], []
        for start, stop in consent.intervals(self.end):
            rows, idx = _schedule_hits(schedule, start, stop)
            rows_parts.append(rows)
            idx_parts.append(idx)
        rows, idx = np.concatenate(rows_parts), np.concatenate(idx_parts)
        t = schedule[idx] + (self.rng.random(len(rows)) * jitter_minutes * US_PER_MINUTE).astype(np.int64)
        return rows, idx, t

    def _responses(self, rows, t, prob, mean_delay_us):
        hit = self.rng.random(len(rows)) < prob
        delay = self.rng.exponential(mean_delay_us, int(hit.sum())).astype(np.int64)
        return np.flatnonzero(hit), t[hit] + delay + US_PER_SECOND

    def email(self):
        pop, cat = self.pop, self.cat
        consent = pop.consent["email"]
        deliverable = np.isin(pop.email_kind, (EMAIL_VALID, EMAIL_UNNORMALISED))
        rows, idx, t = self._sends(cat.email_times, consent, 20)
        # Welcome email right after an opted-in signup.
        welcome = np.flatnonzero(consent.granted == pop.signup)
        w_t = pop.signup[welcome] + (self.rng.uniform(1, 10, len(welcome)) * US_PER_MINUTE).astype(np.int64)
        rows = np.concatenate([rows, welcome])
        t = np.concatenate([t, w_t])
        prop = np.concatenate([cat.email_props + idx, np.full(len(welcome), cat.welcome_prop)])
        self.out.add(rows, t, ET["email_sent"], CH["email"], prop=prop)

        p_open = self.engagement[rows] * self.fade(rows, t) * deliverable[rows]
        o, open_t = self._responses(rows, t, p_open, 4 * US_PER_HOUR)
        self.out.add(rows[o], open_t, ET["email_open"], CH["email"], prop=prop[o])
        c, click_t = self._responses(rows[o], open_t, 0.15 * self.fade(rows[o], open_t), 3 * US_PER_MINUTE)
        c_rows, c_prop = rows[o][c], prop[o][c]
        self.out.add(c_rows, click_t, ET["email_click"], CH["email"], prop=c_prop)
        # Clicks land on the site; the welcome email has no landing page variant.
        landing = np.where(c_prop == cat.welcome_prop, -1, c_prop - cat.email_props + cat.email_landing_props)
        keep = landing >= 0
        land_t = click_t[keep] + US_PER_SECOND * self.rng.integers(2, 20, int(keep.sum()))
        self.page_views(c_rows[keep], land_t, self.pick_anon(c_rows[keep], land_t), True, landing[keep])

    def sms(self):
        pop, cat = self.pop, self.cat
        rows, idx, t = self._sends(cat.sms_times, pop.consent["sms"], 5)
        self.out.add(rows, t, ET["sms_sent"], CH["sms"], prop=cat.sms_props + idx)
        deliverable = np.isin(pop.phone_kind, (PHONE_E164, PHONE_LOCAL))
        p_click = (0.04 + 0.12 * self.engagement[rows]) * self.fade(rows, t) * deliverable[rows]
        c, click_t = self._responses(rows, t, p_click, 20 * US_PER_MINUTE)
        self.out.add(rows[c], click_t, ET["sms_click"], CH["sms"], prop=cat.sms_props + idx[c])
        land_t = click_t + US_PER_SECOND * self.rng.integers(2, 20, len(c))
        self.page_views(
            rows[c], land_t, self.pick_anon(rows[c], land_t), True, cat.sms_landing_props + idx[c]
        )

    def push(self):
        """Push sends are not tracked as events; only opens from the app are."""
        pop, cat = self.pop, self.cat
        rows, idx, t = self._sends(cat.push_times, pop.consent["push"], 2)
        p_open = (0.03 + 0.20 * self.engagement[rows]) * pop.app_share[rows] * self.fade(rows, t)
        o, open_t = self._responses(rows, t, p_open, 30 * US_PER_MINUTE)
        self.out.add(
            rows[o],
            open_t,
            ET["push_open"],
            CH["push"],
            anon=self.pick_anon(rows[o], open_t),
            prop=cat.push_props + idx[o],
        )
