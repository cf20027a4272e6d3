"""Small builders of securities and snapshots for the universe tests, and a realistic market."""

from __future__ import annotations

import datetime as dt
import random

from tickstockpl.market.snapshot import Security, Snapshot

AS_OF = dt.date(2025, 6, 13)


def stock(symbol: str, cap: float | None, sector: str | None = "Technology", industry: str | None = "Software",
          **fields) -> Security:
    """An active common stock (override anything through `fields`)."""
    values = dict(symbol=symbol, name=f"{symbol} Inc.", type="CS", active=True, market_cap=cap,
                  primary_exchange="XNAS", market="stocks", sector=sector, industry=industry)
    values.update(fields)
    return Security(**values)


def etf(symbol: str, name: str, cap: float | None = None, **fields) -> Security:
    """An active ETF (override anything through `fields`)."""
    values = dict(symbol=symbol, name=name, type="ETF", active=True, market_cap=cap,
                  primary_exchange="ARCX", market="stocks", etf_type="ETF", issuer="Vanguard")
    values.update(fields)
    return Security(**values)


def snapshot(*securities: Security, as_of: dt.date = AS_OF, session: dt.date | None = AS_OF) -> Snapshot:
    return Snapshot(as_of=as_of, securities=tuple(securities), latest_session=session,
                    bars_on_latest_session=len(securities))


SECTORS = {
    "Technology": ["Software", "Semiconductors", "Computer Hardware", "IT Services"],
    "Financial Services": ["Banks", "Insurance", "Asset Management", "Capital Markets"],
    "Healthcare": ["Biotechnology", "Medical Devices", "Pharmaceuticals"],
    "Energy": ["Oil & Gas", "Renewable Energy"],
    "Consumer Cyclical": ["Retail", "Auto Manufacturers", "Restaurants"],
    "Industrials": ["Aerospace & Defense", "Machinery", "Railroads"],
    "Real Estate": ["REIT - Industrial", "REIT - Residential"],
    "Utilities": ["Utilities - Regulated Electric"],
}
ETF_NAMES = [
    "Vanguard Total Stock Market ETF", "SPDR S&P 500 ETF Trust", "iShares Russell 2000 ETF",
    "Vanguard Growth ETF", "Vanguard Value ETF", "Technology Select Sector SPDR Fund",
    "iShares Biotechnology ETF", "Vanguard Total Bond Market ETF", "iShares Core U.S. Aggregate Bond ETF",
    "iShares MSCI EAFE ETF", "iShares MSCI Emerging Markets ETF", "iShares MSCI USA Momentum Factor ETF",
    "iShares MSCI USA Min Vol Factor ETF", "Invesco QQQ Trust", "iShares Core S&P Mid-Cap ETF",
    "Vanguard Information Technology ETF", "Schwab International Equity ETF", "Invesco S&P 500 Low Volatility ETF",
    "Global X Robotics & Artificial Intelligence ETF", "SPDR Gold Shares",
]
ESSENTIAL = ["SPY", "QQQ", "IWM", "VTI", "VUG", "VTV", "MTUM", "VGT", "XLK", "XLF", "AGG", "BND", "VEA", "EEM"]
THEME_TICKERS = ["NVDA", "MSFT", "GOOGL", "AMD", "COIN", "TSLA", "CRWD", "AMGN", "SNOW", "PYPL"]


def realistic_snapshot(n_symbols: int = 1_200, etf_share: float = 0.2, seed: int = 7) -> Snapshot:
    """A deterministic market shaped like the real one: log-normal caps, real sector names,
    a few gaps (no sector, no cap, inactive, ADRs), ETFs with category-like names, fresh IPOs."""
    rng = random.Random(seed)
    securities: list[Security] = []
    n_etfs = int(n_symbols * etf_share)
    sectors = list(SECTORS)
    for i in range(n_symbols - n_etfs):
        symbol = THEME_TICKERS[i] if i < len(THEME_TICKERS) else f"S{i:05d}"
        sector = rng.choice(sectors)
        roll = rng.random()
        securities.append(Security(
            symbol=symbol,
            name=f"Company {i} Corp",
            type="ADRC" if roll < 0.03 else "CS",
            active=roll > 0.05,
            market_cap=None if roll > 0.97 else 10 ** rng.uniform(6.5, 12.5),
            primary_exchange=rng.choice(["XNAS", "XNYS", "ARCX", None]),
            market="stocks",
            sector=None if 0.9 < roll <= 0.93 else sector,
            industry=rng.choice(SECTORS[sector]),
            list_date=AS_OF - dt.timedelta(days=rng.randint(0, 40) if roll < 0.02 else rng.randint(100, 9000)),
        ))
    for j in range(n_etfs):
        symbol = ESSENTIAL[j] if j < len(ESSENTIAL) else f"E{j:05d}"
        base = ETF_NAMES[j % len(ETF_NAMES)]
        securities.append(Security(
            symbol=symbol,
            name=base if j < len(ETF_NAMES) else f"{base} {j}",
            type="ETF",
            active=True,
            market_cap=10 ** rng.uniform(7, 11.5) if rng.random() < 0.6 else None,
            aum_millions=rng.uniform(5, 50_000) if rng.random() < 0.7 else None,
            primary_exchange="ARCX",
            market="stocks",
            etf_type=rng.choice(["ETF", "ETN", None]),
            issuer=rng.choice(["Vanguard", "iShares", "State Street", None]),
            list_date=AS_OF - dt.timedelta(days=rng.randint(0, 3000)),
        ))
    rng.shuffle(securities)
    return Snapshot(as_of=AS_OF, securities=tuple(securities), latest_session=AS_OF,
                    bars_on_latest_session=len(securities))
