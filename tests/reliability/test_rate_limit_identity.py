"""The trigger rate limit counts per authenticated identity (api/ratelimit.py), in bounded memory.

With the key not required on the processing API, 40 made-up `X-API-Key` values from one client share
that client's budget (before: 40 accepted triggers, and every value kept in memory for ever); a valid
key keeps its own budget; 30,000 identities leave at most MAX_IDENTITIES in memory.
"""

from __future__ import annotations

import tracemalloc

from tests.support.markets import load_market
from tests.support.asgi import InProcessServer
from tickstockpl.api.ratelimit import MAX_IDENTITIES, SlidingWindow

KEYS = ("rate-key-first-0001", "rate-key-second-0002")
MANUAL = "/api/processing/trigger-manual"


def test_made_up_keys_share_the_clients_budget_where_no_key_is_required(db_url, redis_process):
    load_market(db_url)
    env = {"TICKSTOCKPL_TRIGGER_RATE_PER_MIN": "3", "TICKSTOCKPL_REQUIRE_KEY_PROCESSING": "false"}
    with InProcessServer(db_url, redis_url=redis_process.url, api_keys=KEYS, env=env) as server, \
            server.client(key=False) as c:
        codes = [c.post(MANUAL, headers={"X-API-Key": f"made-up-value-{i:04d}"}, json={"phases": ["cache_sync"]})
                 .status_code for i in range(40)]
        assert len(codes) == 40 and set(codes[:3]) <= {202, 409} and codes[3:] == [429] * 37, codes
        no_key = c.post(MANUAL, json={"phases": ["cache_sync"]})  # the same client without a key: same budget
        assert no_key.status_code == 429 and no_key.headers["Retry-After"].isdigit()
        # a valid key is an identity of its own, on both trigger endpoints
        keyed = c.post(MANUAL, headers={"X-API-Key": KEYS[0]}, json={"phases": ["cache_sync"]})
        assert keyed.status_code in (202, 409), keyed.text
        sync = c.post("/api/processing/cache-sync/trigger", headers={"X-API-Key": KEYS[0]}, json={"mode": "ipos"})
        assert sync.status_code in (202, 409), sync.text


def test_a_key_is_counted_as_the_key_it_matched_not_as_sent():
    """Where a key is required the check runs first: the limiter only sees configured keys."""
    from types import SimpleNamespace

    from tickstockpl.api.ratelimit import identity_of

    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=SimpleNamespace(api_keys=KEYS))),
                              client=SimpleNamespace(host="10.1.2.3"))
    assert identity_of(request, KEYS[1]) == "key:" + KEYS[1]
    assert identity_of(request, "made-up") == identity_of(request, None) == "client:10.1.2.3"


def test_thirty_thousand_identities_stay_in_bounded_memory():
    limiter = SlidingWindow(30)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(30_000):
            assert limiter.allow(f"client:10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert len(limiter) == MAX_IDENTITIES
    print(f"\n30,000 identities: {len(limiter)} kept, {grown / 1e6:.1f} MB")
    assert grown < 6_000_000  # 4,096 entries (measured 4.0 MB), not 30,000 (the old limiter: 26.8 MB)


def test_the_window_is_exact_and_says_when_to_retry():
    now = [1000.0]
    limiter = SlidingWindow(3, clock=lambda: now[0])
    assert [limiter.check("a")[0] for _ in range(3)] == [True, True, True]
    assert limiter.check("a") == (False, 60)
    now[0] += 59.5
    assert limiter.check("a") == (False, 1)
    assert limiter.check("b") == (True, 0)  # another identity, its own budget
    now[0] += 0.5
    assert limiter.check("a") == (True, 0)  # the first three have left the window
