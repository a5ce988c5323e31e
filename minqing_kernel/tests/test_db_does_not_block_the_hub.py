"""Database calls do not block the eventlet hub (STACK-NOTES: psycopg's C wait function
does, unless PSYCOPG_WAIT_FUNC=wait_select). The root conftest monkey-patches and sets
the variable before psycopg is imported, exactly as every nameko process must.
"""
import time

import eventlet
import pytest
import sqlalchemy as sa

from minqing_kernel import db

pytestmark = pytest.mark.integration

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GREENTHREADS = 10
SLEEP_S = 0.3


@pytest.fixture
def engine():
    engine = db.make_engine(POSTGRES, pool_size=GREENTHREADS)
    yield engine
    engine.dispose()


def test_ten_greenthreads_sleeping_in_postgresql_are_all_in_flight_at_once(engine):
    # Given ten greenthreads, each with its own connection from the service's engine
    def sleep_in_postgres(_):
        with engine.connect() as conn:
            started = time.monotonic()
            conn.execute(sa.text("SELECT pg_sleep(:s)"), {"s": SLEEP_S})
            return started, time.monotonic()

    # When they all run a 0.3 s query at the same time
    began = time.monotonic()
    spans = list(eventlet.GreenPool(GREENTHREADS).imap(sleep_in_postgres, range(GREENTHREADS)))
    wall = time.monotonic() - began

    # Then every query started before any finished: none waited for another's I/O
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans
    # And together they took far less than one after another would have
    serial = sum(end - start for start, end in spans)
    assert wall < serial / 2, (wall, serial)


def test_a_service_refuses_to_start_without_the_cooperative_wait_function(monkeypatch):
    monkeypatch.setenv("PSYCOPG_WAIT_FUNC", "wait_c")
    with pytest.raises(RuntimeError, match="PSYCOPG_WAIT_FUNC=wait_select"):
        db.check_wait_func()


def test_a_service_refuses_to_start_when_the_wait_function_is_not_set(monkeypatch):
    monkeypatch.delenv("PSYCOPG_WAIT_FUNC", raising=False)
    with pytest.raises(RuntimeError, match="PSYCOPG_WAIT_FUNC"):
        db.check_wait_func()


def test_the_cooperative_wait_function_passes_the_check(monkeypatch):
    monkeypatch.setenv("PSYCOPG_WAIT_FUNC", "wait_select")
    db.check_wait_func()
