"""One clock for every host: the database server's time, as SQL expressions.

Heartbeats, claims and stale cutoffs compare times written by different machines; each
machine's own clock may run ahead or behind, the database server's is shared. Both
expressions give a naive UTC timestamp, stored as the models' ``DateTime`` columns are.

Example::

    update(Job).values(heartbeat_at=server_now())
    select(Job).where(Job.heartbeat_at < seconds_ago(60))
"""

from __future__ import annotations

from sqlalchemy import DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["seconds_ago", "server_now"]


class seconds_ago(FunctionElement):  # noqa: N801  (reads as a SQL function)
    """The server's UTC time minus ``seconds`` (0: now)."""

    type = DateTime()
    inherit_cache = False  # the offset is rendered into the SQL text

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = float(seconds)
        super().__init__()


def server_now() -> seconds_ago:
    """The database server's current UTC time."""
    return seconds_ago(0.0)


@compiles(seconds_ago, "sqlite")
def _sqlite(element: seconds_ago, compiler, **kw) -> str:
    # Millisecond text in the layout SQLAlchemy stores (sorts with the values it writes).
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '{-element.seconds:+.3f} seconds')"


@compiles(seconds_ago, "postgresql")
def _postgresql(element: seconds_ago, compiler, **kw) -> str:
    # clock_timestamp(): the time of the statement, not of the start of its transaction.
    return f"(timezone('utc', clock_timestamp()) - make_interval(secs => {element.seconds:.3f}))"
