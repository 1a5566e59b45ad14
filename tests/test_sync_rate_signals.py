"""How the shared HTTP client reacts to a success that says the platform's window is used up
(HubSpot's `X-HubSpot-RateLimit-Remaining: 0`), over real HTTP against the HubSpot fake."""

from __future__ import annotations

import time

from fakes.hubspot import FakeHubSpot
from phasegate.destinations.http import HttpClient, RateWindow, RetrySettings

TOKEN = "pat-rate-signals-Jq3Vx8Lm"
CONTACTS = "/crm/v3/objects/contacts"


def _client(url: str) -> HttpClient:
    return HttpClient(
        "hubspot",
        url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout_s=5,
        retry=RetrySettings(budget_s=10, initial_backoff_s=0.01, max_backoff_s=0.1),
        windows=[RateWindow(requests=3, seconds=1.0)],
    )


def test_window_used_up_by_our_own_requests_costs_no_idle_interval():
    """Three slow requests fill a 3-per-second window; the third reply says none remain. The
    next slot frees when our first request leaves the window, 1 s after its reply, not a
    whole interval after the third reply: pausing that long idled a burst's length per cycle
    (HubSpot went from 83% of its limit to ~100% in BENCHMARKS.md)."""
    with FakeHubSpot(TOKEN, rate_windows=((3, 1.0),)) as fake:
        fake.slow_next(3, 0.3)  # the burst takes >= 0.6 s between first and last reply
        client = _client(fake.url)
        try:
            for _ in range(3):
                response = client.send("GET", CONTACTS, params={"limit": "1"})
            assert response.headers["X-HubSpot-RateLimit-Remaining"] == "0"
            pause = client._limiter._paused_until - time.monotonic()
            assert pause < 0.5  # a whole interval from the third reply would be ~1.0 s
            # what follows still never exceeds the platform's window
            for _ in range(6):
                assert client.send("GET", CONTACTS, params={"limit": "1"}).status_code == 200
        finally:
            client.close()
    assert fake.throttled == 0 and fake.peak(1.0) <= 3


def test_window_used_up_by_someone_else_is_respected_in_full():
    """Another app has spent the shared quota: our window is empty, so nothing of ours frees a
    slot, and the client holds off for the interval the platform gives."""
    with FakeHubSpot(TOKEN, rate_windows=((3, 1.0),)) as fake:
        other = _client(fake.url)
        try:
            for _ in range(2):
                other.send("GET", CONTACTS, params={"limit": "1"})
        finally:
            other.close()
        client = _client(fake.url)
        try:
            response = client.send("GET", CONTACTS, params={"limit": "1"})
            assert response.headers["X-HubSpot-RateLimit-Remaining"] == "0"
            pause = client._limiter._paused_until - time.monotonic()
        finally:
            client.close()
    # our only request is the newest, so our oldest leaves our window ~1 s from now as well:
    # the pause is the platform's whole interval
    assert 0.8 < pause <= 1.0
