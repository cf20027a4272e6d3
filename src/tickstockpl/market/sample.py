"""The deterministic sample market: `symbols` rows and daily bars for the demo, tests and benchmarks.

    market = generate(stocks=6000, etfs=1500, sessions=250, end=None, seed=7)
    write(conn, market)                              # COPY into symbols + ohlcv_daily (caller's transaction)
    write_flat_files(market, folder, market.sessions[-5:])   # one gzip CSV per session
    nxt = next_session(market)                       # one more session: price moves, one IPO, one delisting
    apply_next_session(conn, market, nxt)

The same arguments give the same market (with `end=None` the sessions follow the calendar: they
end at the last NYSE session completed before the market clock's now, `tickstockpl.clock`). Sessions are real NYSE sessions from
`market.calendar`; when `end` is not a session they end at the last session before it.

What a market holds (tests and the demo rely on it; counts scale with `stocks` and `etfs`):
- `stocks` rows of type CS or ADRC (a few ADRC, ~0.25%, foreign names, some non-ASCII) across the
  11 sectors and the industries of `sample_data.INDUSTRIES`; log-normal market caps, with one
  stock pinned in each band (mega, large, mid, small, micro) and one below micro;
  `weighted_shares_outstanding` = cap / last close, `market_cap` = the cap a few sessions earlier
  (stale reference data, as from a provider). Roles drawn at random among the others: recent IPOs
  (list_date within the last 30 days of the end, bars from that day; the first lists on the last
  session), older IPOs, delisted (inactive, bars stop earlier), stale (active, last bar a few
  sessions old), no bars at all (with and without caps), caps NULL with bars, shares NULL (cap
  only), sector and industry NULL, primary exchange NULL, and a few class-share tickers with a dot.
- `etfs` rows of type ETF: first the curated list (`sample_data.CURATED_ETFS`: the 20 essential
  ETFs, then funds exercising every ETF category and exclusion of contract §5.3, one inactive),
  then generated ones (brand + theme), some inactive, some without bars, at least one recent IPO.
  ETFs mostly have no market cap; they have `aum_millions` (some NULL), issuer and etf_type.
- Daily bars for every session of a symbol's life: low <= open, close <= high, volume > 0,
  prices in whole cents.

Bars are kept compactly: the closes as one int32 array (cents) per symbol with bars; open, high,
low and volume are derived when needed from the closes and a counter-based hash of (seed, row,
session), so adding a session leaves every earlier bar unchanged, and 100,000 symbols × 250
sessions take about 100 MB.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from tickstockpl.market import sample_data as data
from tickstockpl.market.sample_model import NextSession, SampleMarket, SessionBars

IPO_WINDOW_DAYS = 30
PINNED_CAPS = (2.9e12, 48e9, 4.6e9, 780e6, 140e6, 21e6)  # mega, large, mid, small, micro, below micro
FLAT_FILE_COLUMNS, SYMBOL_COLUMNS, BAR_COLUMNS = data.FLAT_FILE_COLUMNS, data.SYMBOL_COLUMNS, data.BAR_COLUMNS
_CHUNK = 4096  # symbols per block when drawing price paths (bounds temporary memory)
_ETF_SIGMA = {"Fixed Income": 0.004, "Leveraged": 0.028, "Inverse": 0.02, "Commodity": 0.015, "Currency": 0.035}
_ETF_BETA = {"Fixed Income": 0.05, "Leveraged": 2.0, "Inverse": -1.0, "Commodity": 0.2, "Currency": 0.6}


# --------------------------------------------------------------------------------------------
# generation


def generate(*, stocks: int = 6000, etfs: int = 1500, sessions: int = 250, end: dt.date | None = None,
             seed: int = 7) -> SampleMarket:
    """Build a market of `stocks` CS/ADRC rows and `etfs` ETF rows with `sessions` sessions of bars."""
    if stocks < 0 or etfs < 0 or sessions < 1:
        raise ValueError("stocks and etfs must be >= 0 and sessions >= 1")
    days = _session_days(sessions, end)
    rng = np.random.default_rng([seed, 1])
    taken = {t for t, *_ in data.CURATED_ETFS}
    specs = _etf_specs(rng, etfs, days, taken) + _stock_specs(rng, stocks, days, taken)
    return _assemble(seed, days, specs)


def _assemble(seed: int, days: list[dt.date], specs: list[dict]) -> SampleMarket:
    """The market of `specs` (one per symbol): price paths, finished symbols rows, volumes."""
    specs.sort(key=lambda s: s["symbol"])
    with_bars = [s for s in specs if s["first"] >= 0]
    closes = _price_paths(seed, days, with_bars)
    row_of = {s["symbol"]: i for i, s in enumerate(with_bars)}
    stamp = dt.datetime.combine(days[-1], dt.time(22, 0))
    rows = tuple(_finish_row(s, closes, row_of.get(s["symbol"]), stamp) for s in specs)
    base_volume = np.array([_base_volume(s, row) for s, row in zip(with_bars, _by_row(rows, with_bars))])
    return SampleMarket(
        seed=seed, symbols=rows, sessions=tuple(days), bar_symbols=tuple(s["symbol"] for s in with_bars),
        closes=closes, sigma=np.array([s["sigma"] for s in with_bars], dtype=np.float64),
        base_volume=base_volume.astype(np.float64) if base_volume.size else np.zeros(0),
    )


def _session_days(count: int, end: dt.date | None) -> list[dt.date]:
    from tickstockpl.market import calendar

    if end is None:
        from tickstockpl import clock

        end = calendar.last_completed_session(clock.now()).day
    span = int(count * 1.5) + 20
    while True:
        days = [s.day for s in calendar.sessions_between(end - dt.timedelta(days=span), end)]
        if len(days) >= count or end.year - span / 365 < calendar.FIRST_SESSION_YEAR:
            break
        span *= 2
    if len(days) < count:
        raise ValueError(f"the calendar has only {len(days)} sessions up to {end}")
    return days[-count:]


def _tickers(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    """Unique upper-case tickers, 1-5 letters (mostly 3-4), a few class shares like 'ABC.B'."""
    lengths = rng.choice([1, 2, 3, 4, 5], size=count, p=[0.002, 0.018, 0.3, 0.55, 0.13])
    letters = rng.integers(0, 26, size=(count, 5))
    dotted = rng.random(count) < 0.002
    out = []
    for i in range(count):
        length = int(lengths[i])
        attempt = 0
        while True:
            word = "".join(chr(65 + int(x)) for x in letters[i, :length])
            if dotted[i]:
                word = f"{word[:3]}.{'AB'[i % 2]}"
            if word not in taken:
                break
            attempt += 1
            letters[i] = rng.integers(0, 26, size=5)
            if attempt % 2 == 0:  # short names run out: grow after two misses (5 letters: 11.8M names)
                length = min(5, length + 1)
        taken.add(word)
        out.append(word)
    return out


def _ipo_window(days: list[dt.date]) -> list[int]:
    """Indexes of the sessions within the last IPO_WINDOW_DAYS calendar days of the end."""
    return [j for j, d in enumerate(days) if (days[-1] - d).days < IPO_WINDOW_DAYS]


def _lifetime(rng, role: str, days: list[dt.date], window: list[int]) -> tuple[int, int, dt.date | None]:
    """(first bar, last bar, list_date or None) of a symbol with the given role; -1 = no bars."""
    last = len(days) - 1
    if role == "no_bars":
        return -1, -1, None
    if role.startswith("recent_ipo"):
        j = last if role == "recent_ipo_today" else int(rng.choice(window))
        return j, last, days[j]
    if role == "older_ipo" and window[0] > 1:
        j = int(rng.integers(1, window[0]))
        return j, last, days[j]
    if role == "delisted":
        return (0, int(rng.integers(last // 4, last)), None) if last >= 1 else (-1, -1, None)
    if role == "stale" and last >= 1:
        return 0, last - int(rng.integers(1, min(10, last) + 1)), None
    return 0, last, None


def _old_list_date(rng, days: list[dt.date]) -> dt.date:
    return days[0] - dt.timedelta(days=int(rng.integers(30, 14000)))


def _stock_specs(rng: np.random.Generator, n: int, days: list[dt.date], taken: set[str], *,
                 pinned: tuple[float, ...] = PINNED_CAPS, cap_max: float = 4.5e12,
                 soft_cap: float | None = None) -> list[dict]:
    """`n` generated stocks; the first len(pinned) get those caps, the others are drawn up to cap_max
    (with `soft_cap`, a drawn cap c becomes c / (1 + c / soft_cap): always below it, without a pile-up)."""
    if n == 0:
        return []
    flat = [(sector, ind, w, sic, desc) for sector, items in data.INDUSTRIES.items() for ind, w, sic, desc in items]
    weights = np.array([f[2] for f in flat], dtype=float)
    pick = rng.choice(len(flat), size=n, p=weights / weights.sum())
    caps = np.exp(rng.normal(math.log(1.2e9), 2.1, n)).clip(5e6, cap_max)
    if soft_cap is not None:
        caps = caps / (1 + caps / soft_cap)
    caps[: min(n, len(pinned))] = pinned[: min(n, len(pinned))]
    roles = ["normal"] * n
    order = list(rng.permutation(np.arange(len(pinned), n))) if n > len(pinned) else []
    counts = [
        ("adrc", max(3, n // 400)), ("recent_ipo_today", 1), ("recent_ipo", max(2, round(n * 0.003))),
        ("older_ipo", round(n * 0.03)), ("delisted", max(2, round(n * 0.02))), ("stale", max(2, round(n * 0.005))),
        ("no_bars", max(1, round(n * 0.006))), ("no_bars_null_cap", max(1, round(n * 0.004))),
        ("null_cap", max(1, round(n * 0.003))), ("no_shares", max(1, round(n * 0.01))),
        ("null_sector", max(1, round(n * 0.01))), ("no_exchange", max(1, round(n * 0.005))),
    ]
    at = 0
    for role, count in counts:
        for i in order[at:at + count]:
            roles[int(i)] = role
        at += count
    tickers = _tickers(rng, n, taken)
    log_cap = np.log(caps)
    prices = np.exp(math.log(30) + 0.35 * (log_cap - math.log(1.2e9)) + rng.normal(0, 0.6, n)).clip(0.25, 3000)
    sigmas = (0.045 - 0.0045 * (log_cap - math.log(1e8))).clip(0.008, 0.09) * np.exp(rng.normal(0, 0.2, n))
    betas = rng.normal(1.0, 0.3, n).clip(0.2, 2.2)
    drifts = rng.normal(0.0002, 0.0006, n)
    turnover = np.exp(rng.normal(math.log(0.006), 0.7, n)).clip(3e-4, 0.1)
    stems = rng.integers(0, len(data.NAME_STEMS), n)
    nouns = rng.integers(0, 97, n)
    suffixes = rng.integers(0, len(data.NAME_SUFFIXES), n)
    with_partner = rng.random(n) < 0.06
    exchanges = rng.choice(["XNAS", "XNYS", "XASE", "BATS"], size=n, p=[0.55, 0.38, 0.05, 0.02])
    lags = rng.integers(0, 6, n)
    window = _ipo_window(days)
    specs = []
    for i in range(n):
        role = roles[i]
        sector, industry, _, sic, sic_desc = flat[int(pick[i])]
        first, last, list_date = _lifetime(rng, "no_bars" if role.startswith("no_bars") else role, days, window)
        adr = role == "adrc"
        if adr:
            stem, suffix, country = data.ADR_ISSUERS[i % len(data.ADR_ISSUERS)]
            name = f"{stem} {suffix} ADR"
        else:
            country = "US"
            word = industry.split()[0].lower()
            noun_list = data.NAME_NOUNS.get(word, data.DEFAULT_NOUNS)
            stem = data.NAME_STEMS[int(stems[i])]
            suffix = data.NAME_SUFFIXES[int(suffixes[i])]
            if with_partner[i]:
                name = f"{stem} & {data.NAME_PARTNERS[i % len(data.NAME_PARTNERS)]} {suffix}"
            else:
                name = f"{stem} {noun_list[int(nouns[i]) % len(noun_list)]} {suffix}"
        if role == "null_sector":
            sector = industry = sic = sic_desc = None
        pex = None if role == "no_exchange" else str(exchanges[i])
        cap_mode = "null" if role in ("null_cap", "no_bars_null_cap") else "no_shares" if role == "no_shares" else "shares"
        specs.append({
            "symbol": tickers[i], "first": first, "last": last, "price": float(prices[i]),
            "sigma": float(sigmas[i]), "beta": float(betas[i]), "drift": float(drifts[i]),
            "turnover": float(turnover[i]), "cap": float(caps[i]), "cap_mode": cap_mode, "lag": int(lags[i]),
            "row": {
                "name": name, "type": "ADRC" if adr else "CS", "active": role != "delisted",
                "market": "stocks", "primary_exchange": pex, "exchange": data.EXCHANGES.get(pex) if pex else None,
                "sector": sector, "industry": industry, "sic_code": sic, "sic_description": sic_desc,
                "list_date": list_date or _old_list_date(rng, days), "country": country,
            },
        })
    return specs


def _etf_specs(rng: np.random.Generator, n: int, days: list[dt.date], taken: set[str], *,
               curated: tuple = data.CURATED_ETFS) -> list[dict]:
    """`n` ETFs: the first ones from `curated` (ticker, name, issuer, type, aum, active), then generated."""
    curated = list(curated[:n])
    extra = n - len(curated)
    tickers = _tickers(rng, extra, taken) if extra > 0 else []
    roles = ["normal"] * extra
    if extra:
        order = list(rng.permutation(extra))
        least = 1 if extra >= 20 else 0
        counts = [("recent_ipo_today", 1), ("recent_ipo", round(extra * 0.002)),
                  ("delisted", max(least, round(extra * 0.02))), ("no_bars", max(least, round(extra * 0.01)))]
        at = 0
        for role, count in counts:
            for i in order[at:at + count]:
                roles[int(i)] = role
            at += count
    entries = [(t, name, issuer, typ, aum, "normal" if active else "delisted")
               for t, name, issuer, typ, aum, active in curated]
    for i in range(extra):
        brand, issuer = data.ETF_BRANDS[int(rng.integers(len(data.ETF_BRANDS)))]
        theme, typ = data.ETF_THEMES[int(rng.integers(len(data.ETF_THEMES)))]
        modifier = data.ETF_MODIFIERS[int(rng.integers(len(data.ETF_MODIFIERS)))]
        suffix = data.ETF_SUFFIXES[int(rng.integers(len(data.ETF_SUFFIXES)))]
        name = " ".join(part for part in (brand, modifier, theme, suffix) if part)
        aum = None if rng.random() < 0.03 else round(float(np.exp(rng.normal(math.log(250), 2.0))), 2)
        entries.append((tickers[i], name, None if rng.random() < 0.03 else issuer,
                        None if rng.random() < 0.04 else typ, aum, roles[i]))
    specs = []
    window = _ipo_window(days)
    for ticker, name, issuer, typ, aum, role in entries:
        first, last, list_date = _lifetime(rng, role, days, window)
        list_date = list_date or _old_list_date(rng, days)
        price = float(np.exp(rng.normal(math.log(45), 0.8)).clip(5, 700))
        aum = None if aum is None else float(min(aum, 700000))
        cap = None
        if aum is not None and rng.random() < 0.12:
            cap = round(aum * 1e6 * float(rng.uniform(0.97, 1.03)))
        pex = str(rng.choice(["ARCX", "XNAS", "BATS"], p=[0.75, 0.15, 0.10]))
        specs.append({
            "symbol": ticker, "first": first, "last": last, "price": price,
            "sigma": _ETF_SIGMA.get(typ, 0.011) * float(np.exp(rng.normal(0, 0.15))),
            "beta": _ETF_BETA.get(typ, 1.0), "drift": 0.0002, "turnover": float(rng.uniform(0.005, 0.06)),
            "cap": cap, "cap_mode": "etf", "lag": 0, "aum": aum,
            "row": {
                "name": name, "type": "ETF", "active": role != "delisted", "market": "stocks",
                "primary_exchange": pex, "exchange": data.EXCHANGES[pex], "sector": None, "industry": None,
                "sic_code": None, "sic_description": None, "list_date": list_date, "country": "US",
                "etf_type": typ, "issuer": issuer, "aum_millions": aum,
                "expense_ratio": round(float(rng.uniform(0.0003, 0.0095)), 4), "inception_date": list_date,
                "net_assets": None if aum is None else round(aum * 1e6),
            },
        })
    return specs


def _price_paths(seed: int, days: list[dt.date], specs: list[dict]) -> np.ndarray:
    """Closes in cents: a market factor plus each symbol's own noise, anchored at its last bar."""
    n, width = len(specs), len(days)
    closes = np.zeros((n, width), dtype=np.int32)
    market = np.random.default_rng([seed, 2]).normal(0.0004, 0.009, width)
    cols = np.arange(width)
    for start in range(0, n, _CHUNK):
        block = specs[start:start + _CHUNK]
        m = len(block)
        g = np.random.default_rng([seed, 3, start // _CHUNK])
        sigma = np.array([s["sigma"] for s in block])[:, None]
        beta = np.array([s["beta"] for s in block])[:, None]
        drift = np.array([s["drift"] for s in block])[:, None]
        first = np.array([s["first"] for s in block])
        last = np.array([s["last"] for s in block])
        log_price = np.cumsum(beta * market[None, :] + sigma * g.standard_normal((m, width)) + drift, axis=1)
        anchor = log_price[np.arange(m), last]
        log_price += (np.log([s["price"] for s in block]) - anchor)[:, None]
        cents = np.rint(np.exp(log_price) * 100).clip(1, 2**31 - 1)
        alive = (cols[None, :] >= first[:, None]) & (cols[None, :] <= last[:, None])
        closes[start:start + m] = np.where(alive, cents, 0).astype(np.int32)
    return closes


def _finish_row(spec: dict, closes: np.ndarray, row: int | None, stamp: dt.datetime) -> dict:
    """The symbols row: caps from the closes (shares = cap / last close; market_cap a bit stale)."""
    out = dict.fromkeys(SYMBOL_COLUMNS)
    out.update(spec["row"])
    out["symbol"] = spec["symbol"]
    mode, cap = spec["cap_mode"], spec["cap"]
    if mode == "etf":
        out["market_cap"] = cap
    elif mode != "null":
        if row is None:
            out["market_cap"] = round(cap)
            out["weighted_shares_outstanding"] = round(cap / spec["price"])
        else:
            last_close = int(closes[row, spec["last"]]) / 100
            shares = max(1, round(cap / last_close))
            earlier = int(closes[row, max(spec["first"], spec["last"] - spec["lag"])]) / 100
            out["market_cap"] = round(shares * earlier)
            if mode == "shares":
                out["weighted_shares_outstanding"] = shares
    out["last_updated"] = stamp
    out["last_updated_utc"] = stamp.replace(tzinfo=dt.timezone.utc)
    return out


def _by_row(rows: tuple[dict, ...], with_bars: list[dict]) -> list[dict]:
    index = {r["symbol"]: r for r in rows}
    return [index[s["symbol"]] for s in with_bars]


def _base_volume(spec: dict, row: dict) -> float:
    shares = row.get("weighted_shares_outstanding")
    if shares is None and row.get("market_cap"):
        shares = row["market_cap"] / spec["price"]
    if shares is None and spec.get("aum"):
        shares = spec["aum"] * 1e6 / spec["price"]
    return max(2000.0, (shares or 2e6) * spec["turnover"])


# --------------------------------------------------------------------------------------------
# the next session (the demo's second sync)

NEXT_IPO_SECTOR, NEXT_IPO_INDUSTRY = "Technology", "Software - Application"
NEXT_IPO_CAP, NEXT_IPO_PRICE = 24e9, 38.0
DELIST_RANK = 30  # the delisted stock is the 30th largest active CS: a member of many universes


def next_session(market: SampleMarket, *, seed: int | None = None, delisted: str | None = None) -> NextSession:
    """The market one NYSE session later: every symbol still trading moves, one large-cap IPO lists
    (its first bar is that session), and one stock (`delisted`, default the DELIST_RANK-th largest) is delisted."""
    from tickstockpl.market import calendar

    last_day = market.sessions[-1]
    day = calendar.sessions_between(last_day + dt.timedelta(days=1), last_day + dt.timedelta(days=14))[0].day
    j = len(market.sessions) - 1
    rng = np.random.default_rng([market.seed, 4, market.seed if seed is None else seed, j])
    delisted = _pick_delisting(market, j) if delisted is None else delisted
    stamp = dt.datetime.combine(day, dt.time(22, 0))
    ipo_symbol = _tickers(rng, 1, set(market.by_symbol))[0]
    ipo_close = round(NEXT_IPO_PRICE * 1.18 * 100)
    shares = round(NEXT_IPO_CAP / (ipo_close / 100))
    ipo_row = dict.fromkeys(SYMBOL_COLUMNS)
    ipo_row.update({
        "symbol": ipo_symbol, "name": "Brightpath Cloud Systems, Inc.", "type": "CS", "active": True,
        "market_cap": round(shares * ipo_close / 100), "weighted_shares_outstanding": shares, "market": "stocks",
        "primary_exchange": "XNAS", "exchange": data.EXCHANGES["XNAS"], "sector": NEXT_IPO_SECTOR,
        "industry": NEXT_IPO_INDUSTRY, "sic_code": "7372", "sic_description": "SERVICES-PREPACKAGED SOFTWARE",
        "list_date": day, "country": "US", "last_updated": stamp,
        "last_updated_utc": stamp.replace(tzinfo=dt.timezone.utc),
    })
    rows = []
    for row in market.symbols:
        if row["symbol"] == delisted:
            row = {**row, "active": False, "last_updated": stamp, "last_updated_utc": ipo_row["last_updated_utc"]}
        rows.append(row)
    rows.append(ipo_row)
    rows.sort(key=lambda r: r["symbol"])

    n, width = market.closes.shape
    closes = np.zeros((n + 1, width + 1), dtype=np.int32)
    closes[:n, :width] = market.closes
    trading = market.closes[:, j] > 0
    trading &= np.array([market.by_symbol[s]["active"] and s != delisted for s in market.bar_symbols], dtype=bool)
    moves = rng.normal(0.0004, 0.009) + market.sigma * rng.standard_normal(n)
    moved = np.rint(market.closes[:, j] * np.exp(moves)).clip(1, 2**31 - 1)
    closes[:n, width] = np.where(trading, moved, 0).astype(np.int32)
    closes[n, width] = ipo_close
    extended = SampleMarket(
        seed=market.seed, symbols=tuple(rows), sessions=market.sessions + (day,),
        bar_symbols=market.bar_symbols + (ipo_symbol,), closes=closes,
        sigma=np.append(market.sigma, 0.035), base_volume=np.append(market.base_volume, shares * 0.05),
    )
    return NextSession(market=extended, session=day, ipo=ipo_symbol, delisted=delisted)


def _pick_delisting(market: SampleMarket, j: int) -> str:
    ranked = []
    for symbol, row in zip(market.bar_symbols, market.closes[:, j].tolist()):
        info = market.by_symbol[symbol]
        if row and info["active"] and info["type"] == "CS" and info["weighted_shares_outstanding"]:
            ranked.append((-(row / 100) * info["weighted_shares_outstanding"], symbol))
    if not ranked:
        raise ValueError("the market has no active common stock trading on its last session")
    ranked.sort()
    return ranked[min(DELIST_RANK, len(ranked)) - 1][1]


# Loading and files live in sample_io (COPY encoding, gzip CSV), the value in sample_model; both are
# re-exported so callers use one module (sample_io and sample_model never import this one: no cycle).
from tickstockpl.market.sample_io import (  # noqa: E402
    apply_next_session,
    write,
    write_bars,
    write_flat_files,
    write_symbols,
)

__all__ = [
    "FLAT_FILE_COLUMNS", "NextSession", "SampleMarket", "SessionBars", "apply_next_session", "generate",
    "next_session", "write", "write_bars", "write_flat_files", "write_symbols",
]
