"""One installation's state, kept, reset or removed as a whole, never half.

A local installation is four things that point at each other: the database (cases,
reports and their object keys, hand-overs and the partner's work-order ids, caller ids
keyed with CALLER_ID_KEY), the object store's data (`RUN_DIR/s3-data`: the photos), the
平安365 simulator's state (`RUN_DIR/pingan365-sim.json`: its work orders and numbering)
and the secrets (`RUN_DIR/jwt-secret`, `caller-id-key`, ...). A database without its
`RUN_DIR` has cases whose photos are gone, caller ids nobody can recompute and hand-overs
whose ids the partner gives out again; a `RUN_DIR` without its database has photos of
cases that do not exist.

So each installation has an id, written in both places: `RUN_DIR/installation-id` and
the table `minqing_installation.installation` of the database. `make run` checks them
before it starts anything (`ensure`): the same id, or a new installation on both sides,
goes on; anything else stops with what was found and the two ways out. `make stop` keeps
everything; `make clean` (`remove`) drops the installation's schemas from the database
and deletes RUN_DIR, together.

An installation made before this check (both sides without an id, a database with data
and a RUN_DIR with photos) is adopted: both get the same new id.
"""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

SCHEMA = "minqing_installation"
ID_FILE = "installation-id"
# What in RUN_DIR is the installation's data (the secrets are made before the check runs,
# so they do not tell an old RUN_DIR from a new one).
RUN_DATA = ("s3-data", "pingan365-sim.json")


class Mismatch(RuntimeError):
    """The database and RUN_DIR are not one installation."""


@dataclass(frozen=True)
class Found:
    run_id: str | None      # RUN_DIR/installation-id
    db_id: str | None       # minqing_installation.installation
    db_has_data: bool       # any of the services' schemas exists
    run_has_data: bool      # photos or simulator state in RUN_DIR


def read_run_id(run_dir: Path) -> str | None:
    try:
        return (run_dir / ID_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _database_exists(db_uri: str) -> bool:
    url = sa.engine.make_url(db_uri)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": url.database}).first() is not None
    finally:
        admin.dispose()


def look(run_dir: Path, db_uri: str, schemas: list[str]) -> Found:
    run_id = read_run_id(run_dir)
    run_has_data = any((run_dir / name).exists() for name in RUN_DATA)
    if not _database_exists(db_uri):
        return Found(run_id, None, False, run_has_data)
    engine = sa.create_engine(db_uri)
    try:
        with engine.connect() as conn:
            present = set(conn.execute(sa.text(
                "SELECT schema_name FROM information_schema.schemata")).scalars())
            db_id = None
            if SCHEMA in present:
                db_id = conn.execute(sa.text(
                    f"SELECT id FROM {SCHEMA}.installation LIMIT 1")).scalar()
    finally:
        engine.dispose()
    return Found(run_id, db_id, bool(present & set(schemas)), run_has_data)


def verdict(found: Found, run_dir: Path, database: str) -> str:
    """'same' (go on), 'new' or 'adopt' (write one id on both sides); raises Mismatch
    with what was found and the ways out."""
    run_id, db_id = found.run_id, found.db_id
    if run_id and db_id:
        if run_id == db_id:
            return "same"
        raise Mismatch(_message(
            f"{run_dir} belongs to installation {run_id}, but the database {database} "
            f"to installation {db_id}.",
            f"{run_dir} 属于安装 {run_id}，而数据库 {database} 属于安装 {db_id}。", run_dir))
    if db_id or (found.db_has_data and not run_id and not found.run_has_data):
        raise Mismatch(_message(
            f"The database {database} holds the cases of installation {db_id or '(older)'}, "
            f"but {run_dir} does not have that installation's photos, secrets and 平安365 "
            "state (a fresh clone, or `rm -rf .run` without the database): its cases "
            "would point at photos that are gone.",
            f"数据库 {database} 保存着安装 {db_id or '（旧版）'} 的案卷，"
            f"但 {run_dir} 中没有该安装的照片、密钥和平安365 状态（新克隆的代码，"
            "或只删除了 .run）：案卷会指向已不存在的照片。",
            run_dir))
    if run_id or (found.run_has_data and not found.db_has_data):
        raise Mismatch(_message(
            f"{run_dir} holds the photos, secrets and 平安365 state of installation "
            f"{run_id or '(older)'}, but the database {database} has none of its cases.",
            f"{run_dir} 保存着安装 {run_id or '（旧版）'} 的照片、密钥和平安365 状态，"
            f"但数据库 {database} 中没有它的案卷。", run_dir))
    return "adopt" if found.db_has_data else "new"


def _message(en: str, zh: str, run_dir: Path) -> str:
    return (f"{en}\n{zh}\n"
            f"Either point DB_URI and RUN_DIR (now {run_dir}) at the same installation "
            "again, or remove this one entirely with `make clean` (this deletes its "
            "cases, photos and secrets) and `make run` a new one.\n"
            "请让 DB_URI 与 RUN_DIR 指向同一个安装，或用 `make clean` 整体删除（案卷、照片、"
            "密钥一并删除）后再 `make run` 新建。")


def ensure(run_dir: Path, db_uri: str, schemas: list[str]) -> str:
    """Check before `make run` starts anything; returns the installation's id."""
    database = sa.engine.make_url(db_uri).database
    found = look(run_dir, db_uri, schemas)
    if verdict(found, run_dir, database) == "same":
        return found.run_id
    new_id = str(uuid.uuid4())
    _write_db_id(db_uri, new_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ID_FILE
    path.write_text(new_id + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return new_id


def create_database(db_uri: str) -> None:
    url = sa.engine.make_url(db_uri)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": url.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def _write_db_id(db_uri: str, installation_id: str) -> None:
    create_database(db_uri)
    engine = sa.create_engine(db_uri)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            conn.execute(sa.text(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.installation (id text PRIMARY KEY, "
                "created_at timestamptz NOT NULL DEFAULT now())"))
            conn.execute(sa.text(f"DELETE FROM {SCHEMA}.installation"))
            conn.execute(sa.text(f"INSERT INTO {SCHEMA}.installation (id) VALUES (:i)"),
                         {"i": installation_id})
    finally:
        engine.dispose()


def remove(run_dir: Path, db_uri: str, schemas: list[str]) -> list[str]:
    """`make clean`: the installation's schemas in the database, then RUN_DIR, together.
    Only our own schemas are dropped (the database may hold others'). Returns what went."""
    removed = []
    if _database_exists(db_uri):
        engine = sa.create_engine(db_uri)
        try:
            with engine.begin() as conn:
                present = set(conn.execute(sa.text(
                    "SELECT schema_name FROM information_schema.schemata")).scalars())
                for schema in [*schemas, SCHEMA]:
                    if schema in present:
                        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                        removed.append(f"schema {schema}")
        finally:
            engine.dispose()
    if run_dir.exists():
        shutil.rmtree(run_dir)
        removed.append(str(run_dir))
    return removed
