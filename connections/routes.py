"""The admin API for stored connections (/connections), behind AdminCaller; each operation is audited.

Reads never show a secret: only which credential fields are set, each with a fingerprint.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from admin import AdminCaller
from audit import note
from connections.manager import ConnectionManager, StartupRefused, open_connections
from connections.schemas import ConnectionCheck, ConnectionCreate, ConnectionList, ConnectionUpdate, ConnectionView
from connectors.field_mapping import FieldMapping
from connectors.http import UpstreamConnector
from connectors.vendor_config import StoredConfig
from crm import CRMFactory
from deps import ERROR_RESPONSES, app_context
from errors import ValidationFailed
from observability import log_event
from registry import CHATS

router = APIRouter(prefix="/connections", tags=["connections"], responses=ERROR_RESPONSES)


def vendor_class(kind: str, vendor: str) -> type[UpstreamConnector]:
    """The connector class a connection of this kind and vendor is for; a 400 listing the supported ones otherwise."""
    if kind == "crm":
        return CRMFactory.connector_class(vendor)
    return CHATS.connector_class(vendor)


async def start(app: FastAPI) -> None:
    """Open the store (migrations, key checks) and add its readiness check; raises StartupRefused."""

    def probe(cls: type[UpstreamConnector], config: dict[str, Any]) -> None:
        cls.from_request(StoredConfig(config), app_context(app.state))  # the host guard, before anything is stored

    try:
        manager = await open_connections(app.state.settings, vendor_class, probe)
    except StartupRefused as exc:
        log_event("startup_refused", logging.ERROR, detail=str(exc))  # the reason, as one line, before the traceback
        raise
    app.state.connections = manager

    async def check_mapping(cls: type[UpstreamConnector], config: dict[str, Any]) -> None:
        connector = cls.from_request(StoredConfig(config), app_context(app.state))
        check = getattr(connector, "check_field_mapping", None)
        if check is None:
            raise ValidationFailed(f"{cls.vendor} connections take no field_mapping yet", crm_type=cls.vendor)
        problems = await check(connector.config.field_mapping or FieldMapping())
        if problems:
            details = [{**p, "loc": ["body", "settings", *p["loc"]]} for p in problems]
            summary = "; ".join(p["msg"] for p in problems)
            raise ValidationFailed(f"invalid {cls.vendor} field_mapping: {summary}", crm_type=cls.vendor, details=details)

    manager.mapping_check = check_mapping
    app.state.readiness_checks["connections_store"] = manager.store.ping


async def stop(app: FastAPI) -> None:
    """Close the store."""
    manager = getattr(app.state, "connections", None)
    if manager is not None:
        await manager.store.close()


async def connections(request: Request) -> ConnectionManager:
    return request.app.state.connections


Manager = Annotated[ConnectionManager, Depends(connections)]


def audited(operation: str, view: ConnectionView | None = None, **fields: Any) -> None:
    """Name the admin operation on the request's audit line."""
    if view is not None:
        fields.update(connection_id=view.id, crm_type=view.crm_type or view.chat_type)
    note(operation=operation, **fields)


@router.post("", status_code=201, response_model=ConnectionView)
async def create_connection(body: ConnectionCreate, manager: Manager, admin: AdminCaller) -> ConnectionView:
    """Connect a tenant's CRM or chat: credentials are validated against the vendor's config model, then encrypted."""
    audited("connection_create", crm_type=body.crm_type or body.chat_type)
    view = await manager.create(body)
    audited("connection_create", view)
    return view


@router.get("", response_model=ConnectionList)
async def list_connections(
    manager: Manager,
    admin: AdminCaller,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> ConnectionList:
    """Connections in id order, a page at a time."""
    audited("connection_list")
    found = await manager.list(limit, after)
    return ConnectionList(connections=found, next_after=found[-1].id if len(found) == limit else None)


@router.get("/{connection_id}", response_model=ConnectionView)
async def get_connection(connection_id: str, manager: Manager, admin: AdminCaller) -> ConnectionView:
    """One connection (no secrets: fields set and their fingerprints)."""
    audited("connection_get", connection_id=connection_id)
    view = await manager.get(connection_id)
    audited("connection_get", view)
    return view


@router.patch("/{connection_id}", response_model=ConnectionView)
async def update_connection(
    connection_id: str, body: ConnectionUpdate, manager: Manager, admin: AdminCaller
) -> ConnectionView:
    """Change name, status, credentials or settings (merged key by key; null removes a key), validated again."""
    audited("connection_update", connection_id=connection_id)
    view = await manager.update(connection_id, body)
    audited("connection_update", view)
    return view


@router.delete("/{connection_id}", status_code=204)
async def delete_connection(connection_id: str, manager: Manager, admin: AdminCaller) -> Response:
    """Delete a connection; calls naming it get 404 connection_not_found."""
    audited("connection_delete", connection_id=connection_id)
    audited("connection_delete", crm_type=await manager.delete(connection_id))
    return Response(status_code=204)


@router.post("/{connection_id}/test", response_model=ConnectionCheck)
async def test_connection(connection_id: str, manager: Manager, admin: AdminCaller, request: Request) -> ConnectionCheck:
    """The vendor's cheapest authenticated call with the stored credentials: ok, or the contract code it failed with."""
    audited("connection_test", connection_id=connection_id)
    kind, vendor, config = await manager.stored_config(connection_id)
    audited("connection_test", crm_type=vendor)
    connector = vendor_class(kind, vendor).from_request(StoredConfig(config), app_context(request.app.state))
    result = await connector.check_credentials()
    return ConnectionCheck(id=connection_id, vendor=vendor, **result)
