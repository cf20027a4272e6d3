-- no-transaction
-- Finding the latest session's bars must not read the history: an index on the date column
-- (a TimescaleDB hypertable already has one on its time column; IF NOT EXISTS then does nothing).
CREATE INDEX CONCURRENTLY IF NOT EXISTS ohlcv_daily_date_idx ON ohlcv_daily (date);
