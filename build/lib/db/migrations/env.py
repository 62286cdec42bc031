"""Alembic environment: runs on the engine handed over by ``db.migrate`` (batch mode on SQLite)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from db.models import Base

PG_MIGRATION_LOCK = 0x5A1D_0001  # advisory lock id serialising concurrent starts on PostgreSQL


def run_migrations_online() -> None:
    cfg = context.config
    engine = cfg.attributes.get("engine") or create_engine(cfg.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=Base.metadata,
            render_as_batch=conn.dialect.name == "sqlite",
            transactional_ddl=True,  # SQLite too: we issue BEGIN ourselves (see db.session)
            compare_type=True,
        )
        # On SQLite the session hook starts this transaction with BEGIN IMMEDIATE, so two
        # processes starting at once migrate one after the other.
        with context.begin_transaction():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
            context.run_migrations()


run_migrations_online()
