"""Sign-in for every page, with Streamlit's OpenID Connect support (``st.login``, ``st.user``,
``st.logout``), configured by an ``[auth]`` section in ``.streamlit/secrets.toml``.

With that section, ``gate()`` shows a signed-out visitor the sign-in screen and nothing else;
a signed-in person acts as ``access.actor_for(st.user)`` (an administrator when listed in
``SPAI_ADMINS``), and the sidebar says who that is, with a sign-out button. Without it, the
dashboard has no sign-in and everyone acts as ``db.owners.LOCAL`` (``dashboard.access`` then
limits who can reach the server). Pages ask ``current_actor()`` whom they act for.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import access
from db.owners import LOCAL, Actor

__all__ = ["SIGNED_OUT", "account_panel", "auth_section", "current_actor", "enabled", "gate"]

SIGNED_OUT = Actor(owner=None, admin=False)  # may change nothing (pages never run for them)


def auth_section() -> dict[str, Any] | None:
    """The ``[auth]`` secrets section, or None when sign-in is not configured."""
    secrets = st.secrets
    if not secrets.load_if_toml_exists():
        return None
    section = secrets.get("auth")
    if section is None:
        return None
    return section.to_dict() if hasattr(section, "to_dict") else dict(section)


def enabled() -> bool:
    """Whether sign-in is configured (then every page requires it)."""
    return auth_section() is not None


def current_actor() -> Actor:
    """Whom this page acts for: the signed-in person, or ``LOCAL`` without sign-in."""
    if not enabled():
        return LOCAL
    return access.actor_for(st.user.to_dict()) or SIGNED_OUT


def gate() -> Actor:
    """The signed-in person; for a signed-out visitor (or an incomplete ``[auth]`` section)
    draw the sign-in screen (or the configuration error) and stop the run."""
    problem = access.auth_problem(auth_section())
    if problem:
        st.error(
            f"Sign-in is configured in .streamlit/secrets.toml but incomplete: {problem} "
            "(see README, Security). Nothing is served until it is fixed.",
            icon=":material/block:",
        )
        st.stop()
    actor = access.actor_for(st.user.to_dict())
    if actor is None:
        st.title("SPAI dashboard")
        st.info(
            "Sign in to use this dashboard: jobs, image sets and models you create are recorded as yours.",
            icon=":material/lock:",
        )
        st.button("Sign in", key="signin.login", type="primary", on_click=st.login)
        st.stop()
    return actor


def account_panel(actor: Actor) -> None:
    """Who is signed in (and whether as an administrator), with a sign-out button."""
    with st.sidebar:
        role = "administrator" if actor.admin else "user"
        st.caption(f"Signed in as **{actor.owner}** ({role})")
        st.button("Sign out", key="signin.logout", on_click=st.logout)
