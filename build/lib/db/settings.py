"""Named values shared by every user of the store: read and write by key."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.models import Setting

__all__ = ["DEFAULT_MODEL", "get_setting", "set_setting"]

DEFAULT_MODEL = "dashboard.default_model"  # weights path chosen on the Models page


def get_setting(session: Session, key: str) -> str | None:
    """The stored value of `key`, or None when it was never set (or was cleared)."""
    row = session.get(Setting, key)
    return None if row is None else row.value


def set_setting(session: Session, key: str, value: str | None) -> None:
    """Store `value` under `key`; None removes the key."""
    row = session.get(Setting, key)
    if value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
