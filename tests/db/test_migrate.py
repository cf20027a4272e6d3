import psycopg

from tickstockpl.db.migrate import available, upgrade


def test_upgrade_is_idempotent_and_records_versions(db_url):
    assert upgrade(db_url, fill_calendar=False) == []  # template already has everything
    with psycopg.connect(db_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM pl_schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in available()]


def test_upgrade_leaves_existing_shared_tables_alone(pg):
    name = pg.create_database("preexisting")
    url = pg.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        # AppV2's installation may have extra columns; they must survive untouched.
        conn.execute(
            "CREATE TABLE cache_entries (id serial PRIMARY KEY, type varchar(50) NOT NULL, name varchar(100) NOT NULL,"
            " key varchar(100) NOT NULL, value jsonb NOT NULL, environment varchar(10) NOT NULL,"
            " created_at timestamp, updated_at timestamp, universe_category varchar(50),"
            " UNIQUE (type, name, key, environment))"
        )
        conn.execute("INSERT INTO cache_entries (type, name, key, value, environment) VALUES ('app_settings','x','y','1','DEFAULT')")
        before = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name='cache_entries' ORDER BY 1"
        ).fetchall()
    applied = upgrade(url, fill_calendar=False)
    assert applied and upgrade(url, fill_calendar=False) == []
    with psycopg.connect(url) as conn:
        after = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name='cache_entries' ORDER BY 1"
        ).fetchall()
        assert after == before
        assert conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0] == 1
    pg.drop_database(name)


def test_sessions_table_knows_thanksgiving_and_the_half_day(db_url):
    with psycopg.connect(db_url) as conn:
        days = {r[0].isoformat(): r for r in conn.execute(
            "SELECT session, open_utc, close_utc FROM pl_market_sessions WHERE session BETWEEN '2026-11-25' AND '2026-11-30'")}
    assert "2026-11-26" not in days
    half = days["2026-11-27"]
    assert (half[2] - half[1]).total_seconds() == 3.5 * 3600
