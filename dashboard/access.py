"""Who may reach the dashboard, and as whom (see README, Security).

Two modes:

- **Sign-in** (an ``[auth]`` section in ``.streamlit/secrets.toml``): Streamlit's OpenID
  Connect sign-in guards every page (``dashboard.signin``); each person acts as an ``Actor``
  (``actor_for``): their e-mail address (the provider's subject when it gives no verified
  address), an administrator when listed in ``SPAI_ADMINS``. Any bind is allowed.
- **No sign-in**: every visitor can see and change everything (``db.owners.LOCAL``). So the
  server serves only the local machine (a loopback ``server.address``) unless whoever starts
  it says otherwise with ``SPAI_ALLOW_UNAUTHENTICATED=1``; then every page carries a banner.

    bind_problem("0.0.0.0", {})  # -> "Refusing to serve on 0.0.0.0 without sign-in ..."
    bind_problem("127.0.0.1", {})  # -> None
    bind_problem("0.0.0.0", {}, signed_in=True)  # -> None
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from db.owners import Actor

__all__ = [
    "AUTH_KEYS",
    "ENV_ADMINS",
    "ENV_ALLOW",
    "actor_for",
    "admins",
    "auth_problem",
    "banner",
    "bind_problem",
    "identity",
    "is_loopback",
    "unauthenticated_allowed",
]

ENV_ALLOW = "SPAI_ALLOW_UNAUTHENTICATED"  # "1": serve other machines without sign-in
ENV_ADMINS = "SPAI_ADMINS"  # administrators: e-mail addresses (or subjects), comma-separated
AUTH_KEYS = (
    "redirect_uri",
    "cookie_secret",
    "client_id",
    "client_secret",
    "server_metadata_url",
)  # what Streamlit's [auth] needs for one provider


def is_loopback(address: str | None) -> bool:
    """True for an address only this machine reaches; an empty address binds every interface."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: may resolve to anything
        return False


def unauthenticated_allowed(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(ENV_ALLOW, "").strip() == "1"


def bind_problem(address: str | None, env: Mapping[str, str] | None = None, *, signed_in: bool = False) -> str | None:
    """Why the server must not serve on ``address``, or None when it may (always, when
    sign-in is configured: ``signed_in``)."""
    if signed_in or is_loopback(address) or unauthenticated_allowed(env):
        return None
    where = address or "every network interface"
    return (
        f"Refusing to serve on {where} without sign-in: anyone who reaches this server "
        "could cancel jobs, change the default model and read every registered image. "
        "Bind 127.0.0.1 (the default in .streamlit/config.toml), configure sign-in ([auth] "
        "in .streamlit/secrets.toml, see README, Security), or, on a network you trust, "
        f"start it with {ENV_ALLOW}=1 to run without authentication on purpose."
    )


def banner(address: str | None, env: Mapping[str, str] | None = None, *, signed_in: bool = False) -> str | None:
    """The warning every page shows when other machines can reach the server without
    sign-in, else None."""
    if signed_in or is_loopback(address) or not unauthenticated_allowed(env):
        return None
    return (
        f"No sign-in: this server listens on {address or 'every network interface'} and "
        f"was started with {ENV_ALLOW}=1, so anyone who reaches it can see and change "
        "everything here (jobs, image sets, models, the default model)."
    )


def auth_problem(section: Mapping[str, Any] | None) -> str | None:
    """What an ``[auth]`` secrets section lacks for sign-in with one provider (None when it
    is complete); the provider keys may also sit in a ``[auth.<provider>]`` subsection."""
    if not section:
        return "no [auth] section"
    providers = [v for v in section.values() if isinstance(v, Mapping)]
    missing = [k for k in AUTH_KEYS if not section.get(k) and not any(p.get(k) for p in providers)]
    return f"[auth] lacks {', '.join(missing)}" if missing else None


def admins(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The administrators listed in ``SPAI_ADMINS``: e-mail addresses lower-cased (as
    ``identity`` gives them), subjects as written (they are case-sensitive)."""
    raw = (os.environ if env is None else env).get(ENV_ADMINS, "")
    listed = (a.strip() for a in raw.split(","))
    return frozenset(a.lower() if "@" in a else a for a in listed if a)


def identity(user: Mapping[str, Any]) -> str | None:
    """Who a signed-in user is: the e-mail address (lower-cased) unless the provider says it
    is unverified, else the subject; None when signed out."""
    if not user.get("is_logged_in"):
        return None
    email = str(user.get("email") or "").strip().lower()
    if email and user.get("email_verified", True) is not False:
        return email
    sub = str(user.get("sub") or "").strip()
    return sub or None


def actor_for(user: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Actor | None:
    """The ``Actor`` of a signed-in user (``st.user`` as a dict), None when signed out."""
    who = identity(user)
    if who is None:
        return None
    return Actor(owner=who, admin=who in admins(env))
