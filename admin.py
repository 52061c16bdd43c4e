"""The admin API's authentication: CONNECTORS_ADMIN_KEYS, distinct from the callers' keys.

Routes that manage tenants (/connections, /subscriptions) depend on `AdminCaller`. Without admin keys the admin API
is closed (403 `admin_disabled`), except in sandbox mode, where it is open so `make run` examples work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from auth import identify, parse_keys, presented_key
from errors import AdminDisabled, Unauthorized
from observability import request_fields_var

SANDBOX_ADMIN = "sandbox-admin"  # the admin id the audit and access lines name in an open sandbox


async def admin_caller(request: Request) -> str:
    """The id of the admin key presented, or a 401/403 in the error contract."""
    state = request.app.state
    keys = getattr(state, "admin_keys", None)
    if keys is None:
        keys = state.admin_keys = parse_keys(state.settings.connectors_admin_keys)
    if not keys:
        if not state.settings.sandbox:
            raise AdminDisabled("the admin API is closed: set CONNECTORS_ADMIN_KEYS to open it")
        caller = SANDBOX_ADMIN
    else:
        key = presented_key(request.scope["headers"])
        found = identify(keys, key) if key is not None else None
        if found is None:
            reason = "no admin key" if key is None else "a key that is not one of CONNECTORS_ADMIN_KEYS"
            raise Unauthorized(f"{reason}: send Authorization: Bearer <admin key> or X-API-Key: <admin key>")
        caller = found
    fields = request_fields_var.get()
    if fields is not None:
        fields["caller"] = f"admin:{caller}"
    return caller


AdminCaller = Annotated[str, Depends(admin_caller)]
