"""The benchmark's latency proxy (bench/latency_proxy.py) on a real PostgreSQL: what goes through it
arrives whole and in order, and every round trip through it costs at least the configured delay
in each direction. Only lower bounds on time are asserted (the delay is behaviour; an upper bound
would be a property of the machine's load)."""

from __future__ import annotations

import time

import psycopg
import pytest

from bench.latency_proxy import LatencyProxy, round_trip_ms


@pytest.fixture
def proxy(db_url):
    with LatencyProxy(db_url, delay_ms=1.0) as running:
        yield running


def test_queries_through_the_proxy_return_what_the_server_returns(db_url, proxy):
    query = "SELECT i, md5(i::text) FROM generate_series(1, 50000) AS i ORDER BY i"
    with psycopg.connect(db_url) as direct:
        expected = direct.execute(query).fetchall()
    with psycopg.connect(proxy.url(db_url)) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == psycopg.conninfo.conninfo_to_dict(
            db_url)["dbname"]
        assert conn.execute("SELECT %s::int + %s::int", (2, 3)).fetchone() == (5,)
        assert conn.execute(query).fetchall() == expected  # megabytes in many chunks, in order

        conn.execute("CREATE TABLE proxied (id int PRIMARY KEY, body text)")
        with conn.cursor().copy("COPY proxied (id, body) FROM STDIN") as copy:
            for i in range(20000):
                copy.write_row((i, f"row {i} " + "x" * 50))
        conn.commit()
        assert conn.execute("SELECT count(*), sum(id), min(body) FROM proxied").fetchone() == (
            20000, sum(range(20000)), "row 0 " + "x" * 50)

        conn.execute("INSERT INTO proxied VALUES (-1, 'rolled back')")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM proxied WHERE id = -1").fetchone() == (0,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        conn.rollback()
        assert conn.execute("SELECT 42").fetchone() == (42,)


def test_connections_are_independent_and_a_server_side_close_reaches_the_client(db_url, proxy):
    with psycopg.connect(proxy.url(db_url), autocommit=True) as one, \
            psycopg.connect(proxy.url(db_url), autocommit=True) as two:
        pid_one = one.execute("SELECT pg_backend_pid()").fetchone()[0]
        pid_two = two.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert pid_one != pid_two
        with psycopg.connect(db_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid_one,)).fetchone() == (True,)
        with pytest.raises(psycopg.OperationalError):
            one.execute("SELECT 1")
        assert two.execute("SELECT 7").fetchone() == (7,)
    with psycopg.connect(proxy.url(db_url)) as again:
        assert again.execute("SELECT 8").fetchone() == (8,)


@pytest.mark.parametrize("delay_ms", [1.0, 5.0])
def test_every_round_trip_costs_at_least_the_delay_each_way(db_url, delay_ms):
    with LatencyProxy(db_url, delay_ms=delay_ms) as proxy:
        measured = round_trip_ms(proxy.url(db_url), queries=20)
        assert measured["min_ms"] >= 2 * delay_ms  # one query = one round trip: the delay up, then down

        with psycopg.connect(proxy.url(db_url), autocommit=True) as conn:
            conn.execute("SELECT 1")
            started = time.perf_counter()
            for _ in range(10):
                conn.execute("SELECT 1").fetchone()
            assert time.perf_counter() - started >= 10 * 2 * delay_ms / 1000  # sequential round trips add up
    assert proxy.proc is None


def test_the_proxy_process_ends_when_stopped(db_url):
    proxy = LatencyProxy(db_url, delay_ms=1.0).start()
    process = proxy.proc
    with psycopg.connect(proxy.url(db_url)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    proxy.stop()
    assert process.poll() is not None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(proxy.url(db_url), connect_timeout=2)
