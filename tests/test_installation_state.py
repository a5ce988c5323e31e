"""One installation's state together (tools/installation.py, issue #12 point 11).

`make run` goes on only when the database and RUN_DIR are one installation; `make stop`
keeps both; `make clean` removes both. Against the real PostgreSQL, in a throwaway
database of this test's own (never the shared `minqing` or the test stacks' ones), with a
RUN_DIR in tmp_path; `python -m tools.stack` is run as `make` runs it.
"""
from __future__ import annotations

import subprocess
import uuid

import pytest
import sqlalchemy as sa

from tools import installation
from tools import stack as stk

pytestmark = pytest.mark.integration

SCHEMAS = stk.db_schemas()


@pytest.fixture
def db_uri():
    uri = f"postgresql+psycopg://postgres@127.0.0.1:5432/minqing_install_{uuid.uuid4().hex[:12]}"
    yield uri
    stk.drop_database(uri)


def make_service_schema(db_uri: str, name: str = "dispatch") -> None:
    """What an installation's cases look like to the check: a service's schema."""
    installation.create_database(db_uri)
    engine = sa.create_engine(db_uri)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE TABLE IF NOT EXISTS "{name}".cases (id int)'))
    engine.dispose()


def put_photos(run_dir) -> None:
    (run_dir / "s3-data").mkdir(parents=True, exist_ok=True)
    (run_dir / "s3-data" / "photo").write_bytes(b"\xff\xd8\xff")


def schemas_in(db_uri: str) -> set[str]:
    engine = sa.create_engine(db_uri)
    with engine.connect() as conn:
        found = set(conn.execute(sa.text(
            "SELECT schema_name FROM information_schema.schemata")).scalars())
    engine.dispose()
    return found


def ensure(run_dir, db_uri):
    return installation.ensure(run_dir, db_uri, SCHEMAS)


def test_a_new_installation_gets_one_id_on_both_sides_and_keeps_it(tmp_path, db_uri):
    # Given no database and no RUN_DIR yet
    # When `make run` checks, and later checks again (after `make stop`)
    first = ensure(tmp_path / "run", db_uri)
    make_service_schema(db_uri)
    put_photos(tmp_path / "run")
    again = ensure(tmp_path / "run", db_uri)
    # Then both sides carry the same id, and it stays
    assert first == again == installation.read_run_id(tmp_path / "run")
    assert installation.look(tmp_path / "run", db_uri, SCHEMAS).db_id == first


def test_a_run_dir_removed_without_its_database_stops_make_run(tmp_path, db_uri):
    # Given an installation with cases and photos
    ensure(tmp_path / "run", db_uri)
    make_service_schema(db_uri)
    # When its RUN_DIR goes (the old `make clean`, or a fresh clone) and `make run` checks
    with pytest.raises(installation.Mismatch) as refused:
        ensure(tmp_path / "fresh-clone", db_uri)
    # Then it refuses, saying why and what to do, and writes nothing
    assert "does not have that installation's photos" in str(refused.value)
    assert "make clean" in str(refused.value) and "照片" in str(refused.value)
    assert installation.read_run_id(tmp_path / "fresh-clone") is None


def test_a_database_from_before_the_check_without_its_photos_stops_make_run(tmp_path, db_uri):
    # Given a database with cases and no installation id (made by an older version)
    make_service_schema(db_uri)
    # When a fresh clone's `make run` checks, then it refuses
    with pytest.raises(installation.Mismatch):
        ensure(tmp_path / "run", db_uri)


def test_a_run_dir_whose_database_is_gone_stops_make_run(tmp_path, db_uri):
    # Given an installation whose database was dropped on its own
    ensure(tmp_path / "run", db_uri)
    put_photos(tmp_path / "run")
    stk.drop_database(db_uri)
    # When `make run` checks, then it refuses: the photos belong to no case
    with pytest.raises(installation.Mismatch) as refused:
        ensure(tmp_path / "run", db_uri)
    assert "has none of its cases" in str(refused.value)


def test_two_installations_mixed_stop_make_run(tmp_path, db_uri):
    # Given two installations
    other_db = db_uri + "_other"
    try:
        ensure(tmp_path / "one", db_uri)
        ensure(tmp_path / "two", other_db)
        # When one's RUN_DIR is started against the other's database, then it refuses
        with pytest.raises(installation.Mismatch) as refused:
            ensure(tmp_path / "one", other_db)
        assert "belongs to installation" in str(refused.value)
    finally:
        stk.drop_database(other_db)


def test_an_installation_from_before_the_check_is_adopted_whole(tmp_path, db_uri):
    # Given a database with cases and a RUN_DIR with photos, neither with an id
    make_service_schema(db_uri)
    put_photos(tmp_path / "run")
    # When `make run` checks, then both get the same id
    adopted = ensure(tmp_path / "run", db_uri)
    assert installation.look(tmp_path / "run", db_uri, SCHEMAS).db_id == adopted
    assert installation.read_run_id(tmp_path / "run") == adopted


def run_stack(command: str, run_dir, db_uri) -> subprocess.CompletedProcess:
    env = {**stk.settings(run_dir=run_dir).env, "RUN_DIR": str(run_dir), "DB_URI": db_uri}
    return subprocess.run([stk.PYTHON, "-W", "ignore", "-m", "tools.stack", command],
                          cwd=stk.ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_make_clean_removes_the_database_schemas_and_the_run_dir_together(tmp_path, db_uri):
    # Given an installation with cases, photos and secrets
    run_dir = tmp_path / "run"
    ensure(run_dir, db_uri)
    for schema in SCHEMAS:
        make_service_schema(db_uri, schema)
    put_photos(run_dir)
    assert (run_dir / "jwt-secret").exists() or stk.installation_secret(run_dir, "JWT_SECRET")
    # When `make clean` runs
    cleaned = run_stack("clean", run_dir, db_uri)
    # Then the installation's schemas and RUN_DIR are gone, together
    assert cleaned.returncode == 0, cleaned.stderr
    assert not run_dir.exists()
    assert not schemas_in(db_uri) & {*SCHEMAS, installation.SCHEMA}
    # And the next `make run` starts a new installation without complaint
    assert ensure(run_dir, db_uri)


def test_make_run_against_a_half_installation_exits_with_the_reason(tmp_path, db_uri):
    # Given a database with an installation's cases and a RUN_DIR that is not its own
    ensure(tmp_path / "run", db_uri)
    make_service_schema(db_uri)
    # When `python -m tools.stack provision` (what `make run` provisions with) runs
    refused = run_stack("provision", tmp_path / "fresh-clone", db_uri)
    # Then it exits 2 before starting anything, and says why
    assert refused.returncode == 2
    assert "nothing was started" in refused.stderr and "make clean" in refused.stderr
    assert not (tmp_path / "fresh-clone" / "s3-data").exists()
