"""Who owns a row, and who may change it.

Jobs, image sets, runs and models record their ``owner``: the identity of the signed-in person
who created them (``dashboard.access`` turns Streamlit's ``st.user`` into an ``Actor``), or NULL
when the dashboard runs without sign-in. Rows a job creates (a run, registered sets, imported
models) get the job's owner. The rules, checked by the library functions the pages call:

- the owner or an administrator may cancel, retry or delete a job, image set, run or model;
- only an administrator may change the saved default model or register server folders;
- without sign-in everyone acts as ``LOCAL``, an administrator (see README, Security).

    require_owner(Actor("bob@lab.org", admin=False), "alice@lab.org", "cancel job 3")
    # NotAllowed: Only its owner (alice@lab.org) or an administrator may cancel job 3 ...
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOCAL", "Actor", "NotAllowed", "may_change", "require_admin", "require_owner"]


@dataclass(frozen=True)
class Actor:
    """The person a page acts for."""

    owner: str | None  # recorded on the rows they create; None without sign-in
    admin: bool = False

    def __str__(self) -> str:
        role = " (administrator)" if self.admin and self.owner else ""
        return f"{self.owner or 'everyone (no sign-in)'}{role}"


LOCAL = Actor(owner=None, admin=True)  # no sign-in: every visitor may do everything


class NotAllowed(PermissionError):
    """The signed-in person may not do this; the message says who may."""


def may_change(actor: Actor, owner: str | None) -> bool:
    """Whether ``actor`` may cancel, retry or delete a row owned by ``owner``."""
    return actor.admin or (actor.owner is not None and actor.owner == owner)


def require_owner(actor: Actor, owner: str | None, action: str) -> None:
    """``NotAllowed`` unless ``actor`` owns the row (``owner``) or is an administrator."""
    if not may_change(actor, owner):
        whose = f"its owner ({owner})" if owner else "its owner (nobody: made without sign-in)"
        raise NotAllowed(f"Only {whose} or an administrator may {action}; you are signed in as {actor.owner}.")


def require_admin(actor: Actor, action: str) -> None:
    """``NotAllowed`` unless ``actor`` is an administrator."""
    if not actor.admin:
        raise NotAllowed(
            f"Only an administrator may {action}; you are signed in as "
            f"{actor.owner}. Administrators are listed in SPAI_ADMINS."
        )
