"""Synthetic data generator: determinism, schemas, BG/NBD statistics, injected faults."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from phasegate.generator import DirtyConfig, GeneratorConfig, generate

END_DATE = date(2026, 11, 25)
WINDOW_END = pd.Timestamp("2026-11-26", tz="UTC")  # the window includes end_date itself
DAY = pd.Timedelta(days=1)
FILES = ("customers", "identities", "events", "consents", "truth")
CLIENT_TYPES = {"page_view", "app_open", "email_open", "email_click", "sms_click", "push_open"}
KNOWN_TYPES = {
    "page_view": {"web"},
    "app_open": {"app"},
    "email_sent": {"email"},
    "email_open": {"email"},
    "email_click": {"email"},
    "sms_sent": {"sms"},
    "sms_click": {"sms"},
    "push_open": {"push"},
    "add_to_cart": {"web", "app"},
    "checkout": {"web", "app"},
    "order": {"web", "app"},
}
JUNK = {"test@test.com", "noreply@example.com", "a@a.com", "none@none.com", "asdf@asdf.com"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


class Run:
    """A generated dataset plus lazily loaded pandas frames."""

    def __init__(self, result):
        self.result = result
        self.truth_json = json.loads(result.truth_path.read_text())
        self.faults = self.truth_json["faults"]
        self._frames: dict[str, pd.DataFrame] = {}

    def df(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            self._frames[name] = pq.read_table(self.result.files[name]).to_pandas()
        return self._frames[name]

    def unique_events(self) -> pd.DataFrame:
        """One row per event_id: the first delivery of each duplicated event."""
        if "unique_events" not in self._frames:
            ev = self.df("events").sort_values("received_at", kind="stable")
            self._frames["unique_events"] = ev.drop_duplicates("event_id", keep="first")
        return self._frames["unique_events"]


def _generate(tmp_path_factory, name: str, **kwargs) -> Run:
    kwargs.setdefault("end_date", END_DATE)
    cfg = GeneratorConfig(out=tmp_path_factory.mktemp(name), **kwargs)
    return Run(generate(cfg))


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Run:
    """Default faults, enough customers for tight statistical checks."""
    return _generate(tmp_path_factory, "big", customers=20_000, days=365, seed=7, chunk_size=5_000)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> Run:
    """Every fault at 5% so injected shares can be measured precisely."""
    rates = {name: 0.05 for name in DirtyConfig.model_fields}
    return _generate(
        tmp_path_factory,
        "noisy",
        customers=4_000,
        days=180,
        seed=11,
        chunk_size=1_500,
        dirty=DirtyConfig(**rates),
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Run:
    return _generate(
        tmp_path_factory,
        "clean",
        customers=1_500,
        days=200,
        seed=3,
        chunk_size=600,
        dirty=DirtyConfig.clean(),
    )


def _tol(rate: float, n: int, z: float = 5.0) -> float:
    return z * np.sqrt(max(rate * (1 - rate), 1e-12) / max(n, 1)) + 1e-3


# --- configuration ---------------------------------------------------------------------


def test_validation_errors_name_the_field():
    with pytest.raises(ValidationError, match="customers"):
        GeneratorConfig(customers=0)
    with pytest.raises(ValidationError, match="days"):
        GeneratorConfig(days=0)
    with pytest.raises(ValidationError, match="late_event_rate"):
        DirtyConfig(late_event_rate=1.5)
    with pytest.raises(ValidationError, match="alpha"):
        GeneratorConfig(alpha=0)
    with pytest.raises(ValidationError, match="custmers"):
        GeneratorConfig(custmers=10)  # typos are rejected, not silently ignored


def test_end_date_defaults_to_today_utc():
    from datetime import datetime, timezone

    assert GeneratorConfig().end_date == datetime.now(timezone.utc).date()


# --- determinism -------------------------------------------------------------------------


def test_same_seed_is_identical_and_other_seed_differs(tmp_path):
    def run(seed: int, out: str):
        return generate(
            GeneratorConfig(
                customers=1_200,
                days=120,
                seed=seed,
                chunk_size=500,
                end_date=END_DATE,
                out=tmp_path / out,
            )
        )

    a, b, c = run(5, "a"), run(5, "b"), run(6, "c")
    for name in FILES:
        ta, tb = pq.read_table(a.files[name]), pq.read_table(b.files[name])
        assert ta.equals(tb), name
        assert a.files[name].read_bytes() == b.files[name].read_bytes(), name
    assert a.truth_path.read_text() == b.truth_path.read_text()
    assert a.rows == b.rows
    for name in ("customers", "events", "truth"):
        assert not pq.read_table(a.files[name]).equals(pq.read_table(c.files[name])), name


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    generate(GeneratorConfig(customers=50, days=30, end_date=END_DATE, out=tmp_path), progress=True)
    captured = capsys.readouterr()
    assert "50/50" in captured.err
    assert captured.out == ""


# --- schemas -----------------------------------------------------------------------------


def test_schemas_and_row_counts(big):
    ts = pa.timestamp("us", tz="UTC")
    expected = {
        "customers": {
            "customer_id": pa.string(),
            "signup_at": ts,
            "email": pa.string(),
            "phone": pa.string(),
            "country": pa.string(),
        },
        "identities": {
            "identity_type_a": pa.string(),
            "identity_value_a": pa.string(),
            "identity_type_b": pa.string(),
            "identity_value_b": pa.string(),
            "observed_at": ts,
        },
        "events": {
            "event_id": pa.string(),
            "occurred_at": ts,
            "received_at": ts,
            "user_id": pa.string(),
            "anonymous_id": pa.string(),
            "event_type": pa.string(),
            "channel": pa.string(),
            "amount": pa.float64(),
            "properties": pa.string(),
        },
        "consents": {
            "customer_id": pa.string(),
            "channel": pa.string(),
            "status": pa.string(),
            "updated_at": ts,
        },
        "truth": {
            "customer_id": pa.string(),
            "lambda": pa.float64(),
            "p": pa.float64(),
            "n_orders": pa.int64(),
            "first_order_at": ts,
            "last_order_at": ts,
            "dropped": pa.bool_(),
            "dropout_at": ts,
            "alive": pa.bool_(),
        },
    }
    for name, columns in expected.items():
        schema = pq.read_schema(big.result.files[name])
        assert {f.name: f.type for f in schema} == columns, name
        rows = pq.ParquetFile(big.result.files[name]).metadata.num_rows
        assert rows == big.result.rows[name] == big.truth_json["rows"][name]
    assert big.result.rows["customers"] == big.result.rows["truth"] == 20_000
    params = big.truth_json["parameters"]
    assert params | {"customers": 20_000, "seed": 7, "end_date": "2026-11-25"} == params


def test_customer_columns_look_real(big):
    cust = big.df("customers")
    assert cust.customer_id.is_unique
    assert cust.customer_id.str.fullmatch(r"c\d{7}").all()
    assert set(cust.country) == {"US", "GB", "DE", "FR", "NL"}
    start = WINDOW_END - 365 * DAY
    assert cust.signup_at.min() >= start and cust.signup_at.max() < WINDOW_END
    # Uniform signups: every month of the window gets a share of customers.
    months = ((cust.signup_at - start) / (30 * DAY)).astype(int).value_counts()
    assert months.loc[0] > 1_000 and months.loc[11] > 1_000

    phones = cust.phone.dropna()
    e164 = phones.str.fullmatch(r"\+\d{10,13}")
    assert 0.6 < e164.mean() < 0.9
    assert phones.str.fullmatch(r"\(\d{3}\) \d{3}-\d{4}").any()  # US local format
    assert phones.str.fullmatch(r"0\d \d{2} \d{2} \d{2} \d{2}").any()  # FR local format
    us = cust[cust.phone.str.fullmatch(r"\+1\d{10}", na=False)]
    assert (us.country == "US").all()
    assert cust.email.notna().mean() > 0.9
    normalised = cust.email.dropna().str.strip().str.lower()
    legit = normalised[normalised.str.match(EMAIL_RE) & ~normalised.isin(JUNK)]
    assert legit.is_unique  # real people never share an address by accident


def test_event_columns_are_consistent(big):
    ev = big.df("events")
    assert (ev.received_at >= ev.occurred_at).mean() > 0.99
    for etype, channels in KNOWN_TYPES.items():
        rows = ev[ev.event_type == etype]
        assert len(rows) > 0, etype
        assert set(rows.channel) <= channels, etype
    orders = ev[ev.event_type == "order"]
    assert (orders.amount > 0).all()
    assert 20 < orders.amount.median() < 80
    assert ev.loc[ev.event_type != "order", "amount"].isna().all()
    sample = ev.properties.dropna().sample(2_000, random_state=0)
    assert all(isinstance(json.loads(p), dict) for p in sample)
    assert orders.properties.str.contains('"sku"').all()
    sends = ev[ev.event_type == "email_sent"]
    assert sends.properties.str.contains('"campaign"').all()


# --- event ids and duplicates ----------------------------------------------------------


def test_event_ids_unique_except_injected_duplicates(big):
    ev = big.df("events")
    n_extra = len(ev) - ev.event_id.nunique()
    assert n_extra == big.faults["duplicate_events"] > 0
    dups = ev[ev.event_id.duplicated(keep=False)]
    assert dups.event_id.value_counts().max() == 2
    # Exact copies except (sometimes) the delivery time.
    cols = [c for c in ev.columns if c not in ("received_at", "amount")]
    first = dups.drop_duplicates("event_id", keep="first").set_index("event_id")[cols[1:]]
    last = dups.drop_duplicates("event_id", keep="last").set_index("event_id")[cols[1:]]
    pd.testing.assert_frame_equal(first, last.loc[first.index])
    assert ev.event_id.str.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}").all()


# --- BG/NBD ------------------------------------------------------------------------------


def test_parameter_draws_match_priors(big):
    truth = big.df("truth")
    r, alpha, a, b = 0.75, 10.0, 0.8, 2.5
    lam_se = np.sqrt(r) / alpha / np.sqrt(len(truth))
    assert abs(truth["lambda"].mean() - r / alpha) < 5 * lam_se
    p_sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(truth.p.mean() - a / (a + b)) < 5 * p_sd / np.sqrt(len(truth))


def test_purchase_counts_follow_bgnbd(big):
    """Closed-form BG/NBD: P(X(T)=0) = (alpha/(alpha+T))^r and E[X(T)] via 2F1."""
    from scipy.special import hyp2f1

    r, alpha, a, b = 0.75, 10.0, 0.8, 2.5
    truth = big.df("truth").merge(big.df("customers"), on="customer_id")
    t = ((WINDOW_END - truth.signup_at) / DAY).to_numpy()
    p_zero = (alpha / (alpha + t)) ** r
    observed_zero = (truth.n_orders == 0).mean()
    assert abs(observed_zero - p_zero.mean()) < 5 * np.sqrt((p_zero * (1 - p_zero)).sum()) / len(t)
    expected = (
        (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    )
    x = truth.n_orders.to_numpy()
    assert abs(x.mean() - expected.mean()) < 5 * x.std() / np.sqrt(len(x))


def test_truth_is_internally_consistent(big):
    truth = big.df("truth").merge(big.df("customers"), on="customer_id")
    none = truth[truth.n_orders == 0]
    assert not none.dropped.any()
    assert none.first_order_at.isna().all() and none.last_order_at.isna().all()
    dropped = truth[truth.dropped]
    assert (dropped.n_orders >= 1).all()
    assert (dropped.dropout_at == dropped.last_order_at).all()
    assert truth[~truth.dropped].dropout_at.isna().all()
    assert (truth.alive == ~truth.dropped).all()
    buyers = truth[truth.n_orders > 0]
    assert (buyers.first_order_at > buyers.signup_at).all()
    assert (buyers.last_order_at < WINDOW_END).all()
    assert (buyers.first_order_at <= buyers.last_order_at).all()
    assert 0.3 < truth.dropped.mean() < 0.8


def test_orders_match_truth(big):
    ev = big.unique_events()
    orders = ev[ev.event_type == "order"]
    assert orders.user_id.notna().all()
    counts = orders.groupby("user_id").size()
    truth = big.df("truth").set_index("customer_id")
    observed = counts.reindex(truth.index, fill_value=0)
    assert (observed == truth.n_orders).all()
    last = orders.groupby("user_id").occurred_at.max()
    assert (last == truth.loc[last.index, "last_order_at"]).all()


def test_every_order_has_cart_and_checkout_before_it(big):
    ev = big.unique_events()
    orders = ev[ev.event_type == "order"].sort_values("occurred_at")
    for step in ("add_to_cart", "checkout"):
        prior = ev[ev.event_type == step][["user_id", "occurred_at", "properties", "channel"]]
        prior = prior.rename(
            columns={
                "occurred_at": "step_at",
                "properties": "step_props",
                "channel": "step_channel",
            }
        ).sort_values("step_at")
        joined = pd.merge_asof(
            orders,
            prior,
            left_on="occurred_at",
            right_on="step_at",
            by="user_id",
            direction="backward",
            allow_exact_matches=False,
        )
        assert joined.step_at.notna().all(), step
        assert (joined.occurred_at - joined.step_at < pd.Timedelta(hours=1)).all(), step
        assert (joined.step_props == joined.properties).all(), step  # same sku
        assert (joined.step_channel == joined.channel).all(), step


# --- behaviour ---------------------------------------------------------------------------


def test_engagement_fades_after_dropout(big):
    ev = big.unique_events()
    ev = ev[ev.user_id.notna() & (ev.occurred_at < WINDOW_END)]
    truth = big.df("truth").merge(big.df("customers"), on="customer_id").set_index("customer_id")

    def rate(kinds: set[str], rows: pd.DataFrame, since: pd.Series) -> float:
        hits = ev[ev.event_type.isin(kinds) & ev.user_id.isin(rows.index)]
        hits = hits[hits.occurred_at >= since.loc[hits.user_id].to_numpy()]
        return len(hits) / ((WINDOW_END - since.loc[rows.index]) / DAY).sum()

    alive, dropped = truth[truth.alive], truth[truth.dropped]
    visits = {"page_view", "app_open"}
    alive_rate = rate(visits, alive, alive.signup_at)
    dropped_rate = rate(visits, dropped, dropped.dropout_at)
    assert alive_rate > 2 * dropped_rate
    # Outbound marketing ignores activity: sends per day are similar either way.
    sent_alive = rate({"email_sent"}, alive, alive.signup_at)
    sent_dropped = rate({"email_sent"}, dropped, dropped.dropout_at)
    assert 0.6 < sent_dropped / sent_alive < 1.4
    assert 0.5 < sent_alive * 7 < 2.0  # about 1-2 emails a week to consented customers


def test_anonymous_activity_before_and_after_login(big):
    ev = big.unique_events()
    ids = big.df("identities")
    logins = ids[ids.identity_type_a == "anonymous_id"].set_index("identity_value_a")
    anon_only = ev[ev.user_id.isna() & ev.anonymous_id.notna()]
    login_at = logins.loc[anon_only.anonymous_id, "observed_at"].to_numpy()
    before = anon_only.occurred_at.to_numpy() < login_at
    assert before.mean() > 0.5  # mostly pre-login browsing...
    assert (~before).sum() > 100  # ...but also logged-out visits later


def test_identity_graph(big):
    ids = big.df("identities")
    cust = big.df("customers").set_index("customer_id")
    kinds = ids.groupby(["identity_type_a", "identity_type_b"]).size()
    assert set(kinds.index) == {
        ("anonymous_id", "user_id"),
        ("email", "user_id"),
        ("phone", "user_id"),
        ("device_id", "anonymous_id"),
    }
    anon = ids[ids.identity_type_a == "anonymous_id"]
    per_user = anon.groupby("identity_value_b").size()
    assert per_user.between(1, 3).all() and len(per_user) == len(cust)
    assert anon.identity_value_a.is_unique
    email = ids[ids.identity_type_a == "email"].set_index("identity_value_b")
    assert (email.identity_value_a == cust.loc[email.index, "email"]).all()
    devices = ids[ids.identity_type_a == "device_id"]
    assert set(devices.identity_value_b) == set(anon.identity_value_a)
    users_per_device = (
        devices.merge(anon, left_on="identity_value_b", right_on="identity_value_a")
        .groupby("identity_value_a_x")
        .identity_value_b_y.nunique()
    )
    assert (users_per_device > 1).sum() == big.faults["shared_devices"] >= 1
    assert users_per_device.max() >= 10


def test_consent_timelines(big):
    consents = big.df("consents").sort_values(["customer_id", "channel", "updated_at"])
    assert set(consents.channel) == {"email", "sms", "push", "ads"}
    assert set(consents.status) == {"granted", "revoked"}
    first = consents.groupby(["customer_id", "channel"]).status.first()
    assert (first == "granted").all()
    # granted / revoked alternate within a customer x channel
    same = consents.status.eq(consents.groupby(["customer_id", "channel"]).status.shift())
    assert not same.any()
    cust = big.df("customers").set_index("customer_id")
    email_consent = consents[consents.channel == "email"].customer_id.unique()
    assert cust.loc[email_consent, "email"].notna().all()
    latest = consents.groupby(["customer_id", "channel"]).status.last().unstack()
    n = len(cust)
    assert (latest.email == "granted").sum() / n > 0.6
    assert (latest.sms == "granted").sum() < (latest.email == "granted").sum()
    assert (consents.status == "revoked").any()


# --- faults ------------------------------------------------------------------------------


def _observed_faults(run: Run) -> tuple[dict[str, int], dict[str, int]]:
    """Count every fault from the files alone, with the denominators it applies to."""
    ev_all = run.df("events")
    ev = run.unique_events()
    client = ev.event_type.isin(CLIENT_TYPES)
    unknown = ~ev.event_type.isin(KNOWN_TYPES)
    future = ev.occurred_at >= WINDOW_END
    late = (ev.received_at - ev.occurred_at) >= 2 * DAY
    null = ev.user_id.isna() & ev.anonymous_id.isna()
    base = len(ev) - int(unknown.sum())
    cust = run.df("customers")
    emails = cust.email.dropna()
    normalised = emails.str.strip().str.lower()
    junk = normalised.isin(JUNK)
    phones = cust.phone.dropna()
    ids = run.df("identities")
    anon = ids[ids.identity_type_a == "anonymous_id"][["identity_value_a", "identity_value_b"]]
    dev = ids[ids.identity_type_a == "device_id"].merge(
        anon, left_on="identity_value_b", right_on="identity_value_a"
    )
    users = dev.groupby("identity_value_a_x").identity_value_b_y.nunique()
    shared = dev[dev.identity_value_a_x.isin(users[users > 1].index)]
    counts = {
        "duplicate_events": len(ev_all) - len(ev),
        "unknown_event_types": int(unknown.sum()),
        "future_timestamps": int(future.sum()),
        "late_events": int(late.sum()),
        "null_ids": int(null.sum()),
        "malformed_emails": int((~normalised.str.match(EMAIL_RE) & ~junk).sum()),
        "junk_identifiers": int(junk.sum()),
        "unnormalised_emails": int((emails != normalised).sum()),
        "malformed_phones": int((phones.str.count(r"\d") < 7).sum()),
        "shared_device_customers": int(shared.identity_value_b_y.nunique()),
    }
    denominators = {
        "duplicate_events": base,
        "unknown_event_types": base,
        "future_timestamps": int(client.sum()),
        "null_ids": int(client.sum()),
        "late_events": base - int(future.sum()),
        "malformed_emails": len(emails),
        "junk_identifiers": len(emails),
        "unnormalised_emails": len(emails),
        "malformed_phones": len(phones),
        "shared_device_customers": len(cust),
    }
    return counts, denominators


def test_fault_counts_in_files_equal_truth(noisy):
    counts, denominators = _observed_faults(noisy)
    for name, count in counts.items():
        assert count == noisy.faults[name], name
        assert denominators[name] == noisy.truth_json["fault_denominators"][name], name


def test_fault_rates_match_config(noisy):
    counts, denominators = _observed_faults(noisy)
    rates = {
        "duplicate_events": "duplicate_event_rate",
        "unknown_event_types": "unknown_event_type_rate",
        "future_timestamps": "future_timestamp_rate",
        "late_events": "late_event_rate",
        "null_ids": "null_id_rate",
        "malformed_emails": "malformed_email_rate",
        "junk_identifiers": "junk_identifier_rate",
        "unnormalised_emails": "unnormalised_email_rate",
        "malformed_phones": "malformed_phone_rate",
        "shared_device_customers": "shared_device_rate",
    }
    for fault, knob in rates.items():
        rate = noisy.truth_json["dirty"][knob]
        observed = counts[fault] / denominators[fault]
        assert abs(observed - rate) < _tol(rate, denominators[fault]), (fault, observed)


def test_default_fault_counts_equal_truth(big):
    counts, _ = _observed_faults(big)
    for name, count in counts.items():
        assert count == big.faults[name], name


def test_fault_shapes(noisy):
    ev = noisy.unique_events()
    late = ev[(ev.received_at - ev.occurred_at) >= 2 * DAY]
    assert ((late.received_at - late.occurred_at) <= 20 * DAY).all()
    future = ev[ev.occurred_at >= WINDOW_END]
    assert future.event_type.isin(CLIENT_TYPES).all()
    assert (future.occurred_at >= WINDOW_END + 0.9 * DAY).all()  # days, not seconds, ahead
    normal = ev[(ev.occurred_at < WINDOW_END) & ((ev.received_at - ev.occurred_at) < 2 * DAY)]
    delay = normal.received_at - normal.occurred_at
    assert delay.min() >= pd.Timedelta(0) and delay.max() <= pd.Timedelta(hours=1)
    assert delay.median() < pd.Timedelta(minutes=1)
    emails = noisy.df("customers").email.dropna()
    assert emails.str.endswith("@").any() and emails.str.contains(" at ").any()
    assert emails.str.startswith("  ").any()  # valid but unnormalised
    assert (emails == "test@test.com").any()


def test_zero_rates_inject_nothing(clean):
    assert all(v == 0 for k, v in clean.faults.items() if k != "shared_devices")
    assert clean.faults["shared_devices"] == 0
    counts, _ = _observed_faults(clean)
    assert all(v == 0 for v in counts.values()), counts
    ev = clean.df("events")
    assert ev.event_id.is_unique
    assert (ev.received_at >= ev.occurred_at).all()
    assert ev.event_type.isin(KNOWN_TYPES).all()


def test_tiny_populations_and_single_customer_chunks(tmp_path):
    # No orders at all, and chunks of one customer, must still produce valid files.
    for i, kwargs in enumerate([dict(customers=1, days=1), dict(customers=3, chunk_size=1)]):
        result = generate(GeneratorConfig(end_date=END_DATE, out=tmp_path / str(i), **kwargs))
        assert result.rows["customers"] == result.rows["truth"] == kwargs["customers"]
        for name in FILES:
            assert pq.read_table(result.files[name]).num_rows == result.rows[name]
