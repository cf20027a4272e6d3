-- Shared tables, created with AppV2's shapes only where they do not exist yet (fresh installs, the demo).
-- An existing table is never altered: IF NOT EXISTS leaves it exactly as it is.

CREATE TABLE IF NOT EXISTS symbols (
    symbol                      varchar(20) PRIMARY KEY,
    name                        varchar(500),
    type                        varchar(20),
    active                      boolean,
    market_cap                  bigint,
    weighted_shares_outstanding bigint,
    market                      varchar(20),
    primary_exchange            varchar(20),
    exchange                    varchar(20),
    sector                      varchar(50),
    industry                    varchar(100),
    sic_code                    varchar(10),
    sic_description             varchar(200),
    list_date                   date,
    country                     varchar(50),
    etf_type                    varchar(50),
    issuer                      varchar(200),
    aum_millions                numeric,
    expense_ratio               numeric,
    inception_date              date,
    net_assets                  numeric,
    last_updated                timestamp,
    last_updated_utc            timestamptz
);

CREATE TABLE IF NOT EXISTS ohlcv_daily (
    symbol     varchar(20) NOT NULL,
    date       date NOT NULL,
    open       numeric,
    high       numeric,
    low        numeric,
    close      numeric,
    volume     bigint,
    created_at timestamptz DEFAULT now(),
    CONSTRAINT ohlcv_daily_symbol_date_key UNIQUE (symbol, date)
);

CREATE TABLE IF NOT EXISTS cache_entries (
    id          serial PRIMARY KEY,
    type        varchar(50)  NOT NULL,
    name        varchar(100) NOT NULL,
    key         varchar(100) NOT NULL,
    value       jsonb        NOT NULL,
    environment varchar(10)  NOT NULL,
    created_at  timestamp DEFAULT now(),
    updated_at  timestamp DEFAULT now(),
    CONSTRAINT cache_entries_type_name_key_environment_key UNIQUE (type, name, key, environment)
);
