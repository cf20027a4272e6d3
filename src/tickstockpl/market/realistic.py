"""A sample market made of real names: the large US companies and ETFs a TickStock user knows, with
synthetic prices, plus the generated long tail of `market.sample` that exercises every edge case.

    market = generate(stocks=6000, etfs=1500, sessions=60, end=None, seed=7)   # a sample.SampleMarket
    nxt = next_session(market)      # one more session: prices move, one IPO, one delisting (from the tail)

What is real and what is not:
- real: the tickers, names, sectors, industries and primary exchanges of `data/us_companies.csv`
  (428 large US companies, every ticker of the default themes among them) and the tickers, names,
  issuers and asset types of `data/us_etfs.csv` (110 ETFs, the 20 essential ETFs of the combo
  universe among them). Both files are facts written for this project (no third-party data set);
- synthetic, deterministic from `seed`: every price, bar, share count and market cap. A company's cap
  is its rounded `approx_cap_billions` times a log-normal factor (sigma 0.12), so the order of the
  leaders is the real order give or take neighbours; an ETF's AUM likewise;
- generated: the long tail (`stocks - 428` stocks, `etfs - 110` ETFs) with invented tickers and names,
  caps below TAIL_CAP_MAX (so every mega and large cap is a real company), and every role of
  `market.sample` (recent IPOs, one listed on the last session, delisted, stale, without bars, NULL
  caps, NULL sector, ADRs with non-ASCII names, class shares with a dot).

The fixed markets of the tests (`sample.generate`) are not affected: this module draws from its own
random streams and only calls the sample generator's building blocks.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import math
from importlib import resources

import numpy as np

from tickstockpl.market import sample
from tickstockpl.market import sample_data as data
from tickstockpl.market.sample import SampleMarket

TAIL_CAP_MAX = 9e9  # the generated stocks' caps stay below this (a smooth bound: c / (1 + c / 9e9))
TAIL_PINNED = (4.6e9, 780e6, 140e6, 21e6)  # one generated stock in mid, small, micro and below micro
CAP_SIGMA = 0.12
_SIC = {industry: (sic, desc) for items in data.INDUSTRIES.values() for industry, _w, sic, desc in items}


@functools.lru_cache(maxsize=1)
def companies() -> tuple[dict, ...]:
    """Rows of data/us_companies.csv, largest first."""
    rows = _read("us_companies.csv")
    for row in rows:
        row["approx_cap_billions"] = float(row["approx_cap_billions"])
    return tuple(sorted(rows, key=lambda r: (-r["approx_cap_billions"], r["symbol"])))


@functools.lru_cache(maxsize=1)
def etfs() -> tuple[dict, ...]:
    """Rows of data/us_etfs.csv, largest first."""
    rows = _read("us_etfs.csv")
    for row in rows:
        row["approx_aum_millions"] = float(row["approx_aum_millions"])
    return tuple(sorted(rows, key=lambda r: (-r["approx_aum_millions"], r["symbol"])))


def _read(name: str) -> list[dict]:
    text = resources.files("tickstockpl.market").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))


def generate(*, stocks: int = 6000, etfs: int = 1500, sessions: int = 60, end: dt.date | None = None,
             seed: int = 7) -> SampleMarket:
    """`stocks` CS/ADRC rows (the real companies first, largest first, then the generated tail) and
    `etfs` ETF rows (likewise) with `sessions` sessions of bars; the same arguments give the same market."""
    if stocks < 0 or etfs < 0 or sessions < 1:
        raise ValueError("stocks and etfs must be >= 0 and sessions >= 1")
    days = sample._session_days(sessions, end)
    real_stocks = companies()[:stocks]
    real_etfs = globals()["etfs"]()[:etfs]
    taken = {r["symbol"] for r in real_stocks} | {r["symbol"] for r in real_etfs} \
        | {t for t, *_ in data.CURATED_ETFS}  # the tail never takes a known fund's ticker either
    real_rng = np.random.default_rng([seed, 5])
    factors = np.exp(real_rng.normal(0.0, 1.0, len(real_etfs)) * CAP_SIGMA)
    curated = tuple((r["symbol"], r["name"], r["issuer"], r["etf_type"],
                     round(r["approx_aum_millions"] * float(f), 2), True) for r, f in zip(real_etfs, factors))
    specs = sample._etf_specs(real_rng, len(curated), days, taken, curated=curated)
    specs += [_company_spec(real_rng, row, days) for row in real_stocks]
    tail_rng = np.random.default_rng([seed, 6])
    specs += sample._etf_specs(tail_rng, etfs - len(real_etfs), days, taken, curated=())
    specs += sample._stock_specs(tail_rng, stocks - len(real_stocks), days, taken, pinned=TAIL_PINNED,
                                 soft_cap=TAIL_CAP_MAX)
    return sample._assemble(seed, days, specs)


def _company_spec(rng: np.random.Generator, row: dict, days: list[dt.date]) -> dict:
    """The generator's spec of one real company: active all along, shares from a synthetic cap."""
    cap = row["approx_cap_billions"] * 1e9 * float(np.exp(rng.normal(0.0, CAP_SIGMA)))
    log_cap = math.log(cap)
    price = float(np.clip(np.exp(math.log(30) + 0.35 * (log_cap - math.log(1.2e9)) + rng.normal(0, 0.5)), 8, 2500))
    sigma = float(np.clip(0.045 - 0.0045 * (log_cap - math.log(1e8)), 0.008, 0.09) * np.exp(rng.normal(0, 0.2)))
    sic, sic_desc = _SIC.get(row["industry"], (None, None))
    exchange = row["exchange"] or None
    return {
        "symbol": row["symbol"], "first": 0, "last": len(days) - 1, "price": price, "sigma": sigma,
        "beta": float(np.clip(rng.normal(1.0, 0.25), 0.3, 2.0)), "drift": float(rng.normal(0.0003, 0.0004)),
        "turnover": float(np.clip(np.exp(rng.normal(math.log(0.006), 0.5)), 1e-3, 0.05)), "cap": cap,
        "cap_mode": "shares", "lag": int(rng.integers(0, 4)),
        "row": {
            "name": row["name"], "type": "CS", "active": True, "market": "stocks", "primary_exchange": exchange,
            "exchange": data.EXCHANGES.get(exchange) if exchange else None, "sector": row["sector"],
            "industry": row["industry"], "sic_code": sic, "sic_description": sic_desc,
            "list_date": days[0] - dt.timedelta(days=int(rng.integers(2000, 16000))), "country": "US",
        },
    }


def is_real(symbol: str) -> bool:
    return symbol in _real_symbols()


@functools.lru_cache(maxsize=1)
def _real_symbols() -> frozenset[str]:
    return frozenset(r["symbol"] for r in companies()) | frozenset(r["symbol"] for r in etfs())


def next_session(market: SampleMarket, *, seed: int | None = None) -> sample.NextSession:
    """`sample.next_session` with the delisting taken from the generated tail (its largest active common
    stock trading on the last session): a real company is never delisted by the simulation."""
    j = len(market.sessions) - 1
    best, pick = -1.0, None
    for symbol, cents in zip(market.bar_symbols, market.closes[:, j].tolist()):
        info = market.by_symbol[symbol]
        if cents and info["active"] and info["type"] == "CS" and info["weighted_shares_outstanding"] \
                and not is_real(symbol):
            cap = cents / 100 * info["weighted_shares_outstanding"]
            if cap > best:
                best, pick = cap, symbol
    return sample.next_session(market, seed=seed, delisted=pick)
