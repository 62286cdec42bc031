"""Who may reach the dashboard. It has no sign-in: every visitor can see and change everything
(see README, Security). So it serves only the local machine (a loopback ``server.address``)
unless whoever starts it says otherwise with ``SPAI_ALLOW_UNAUTHENTICATED=1``; then every page
carries a banner saying so.

    bind_problem("0.0.0.0", {})  # -> "Refusing to serve on 0.0.0.0 without sign-in ..."
    bind_problem("127.0.0.1", {})  # -> None
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

__all__ = ["ENV_ALLOW", "banner", "bind_problem", "is_loopback", "unauthenticated_allowed"]

ENV_ALLOW = "SPAI_ALLOW_UNAUTHENTICATED"  # "1": serve other machines without sign-in


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


def bind_problem(address: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """Why the server must not serve on ``address``, or None when it may."""
    if is_loopback(address) or unauthenticated_allowed(env):
        return None
    where = address or "every network interface"
    return (f"Refusing to serve on {where} without sign-in: anyone who reaches this server "
            "could cancel jobs, change the default model and read every registered image. "
            "Bind 127.0.0.1 (the default in .streamlit/config.toml), or, on a network you "
            f"trust, start it with {ENV_ALLOW}=1 to run without authentication on purpose.")


def banner(address: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The warning every page shows when other machines can reach the server, else None."""
    if is_loopback(address) or not unauthenticated_allowed(env):
        return None
    return (f"No sign-in: this server listens on {address or 'every network interface'} and "
            f"was started with {ENV_ALLOW}=1, so anyone who reaches it can see and change "
            "everything here (jobs, image sets, models, the default model).")
