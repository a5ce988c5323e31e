"""Alembic, the same way for every service: one schema each, its own version table.

A service's `migrations/env.py` is just `run_migrations()`; `upgrade(service)` is what
provisioning (and the Kubernetes migration Job) calls.
"""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def service_dir(service: str) -> Path:
    return ROOT / ("gateway" if service == "gateway" else f"services/{service}")


def alembic_config(service: str, db_uri: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(service_dir(service) / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db_uri.replace("%", "%%"))
    cfg.attributes["schema"] = service
    return cfg


def upgrade(service: str, db_uri: str, revision: str = "head") -> None:
    engine = sa.create_engine(db_uri)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{service}"'))
    engine.dispose()
    command.upgrade(alembic_config(service, db_uri), revision)


def run_migrations() -> None:
    """The body of every service's env.py (online mode only: we always have the DB)."""
    cfg = context.config
    schema = cfg.attributes["schema"]
    engine = sa.create_engine(cfg.get_main_option("sqlalchemy.url"), poolclass=sa.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, version_table_schema=schema,
                          transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def create_kernel_tables(schema: str) -> None:
    """For a service's first migration: the outbox and processed-events tables."""
    from alembic import op

    from minqing_kernel.db import kernel_tables

    for table in kernel_tables(sa.MetaData(schema=schema)):
        table.create(op.get_bind())
