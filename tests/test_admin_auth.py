"""The admin API's keys: distinct from callers' keys, constant-time, closed without keys outside the sandbox."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
import httpx

from admin import AdminCaller
from errors import CRMError
from http_errors import error_response
from tests.conftest import make_settings


def app_with(**settings) -> httpx.AsyncClient:
    app = FastAPI()
    app.state.settings = make_settings(**settings)

    @app.exception_handler(CRMError)
    async def handler(request, exc):
        return error_response(exc)

    @app.get("/connections")
    async def listing(admin: AdminCaller) -> dict[str, str]:
        return {"admin": admin}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


async def test_admin_key_opens_the_admin_api_and_names_its_id():
    client = app_with(sandbox=False, connectors_admin_keys="ops:s3cret-admin-key", connectors_api_keys="bot:caller-key")
    assert (await client.get("/connections", headers={"Authorization": "Bearer s3cret-admin-key"})).json() == {"admin": "ops"}
    assert (await client.get("/connections", headers={"X-API-Key": "s3cret-admin-key"})).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer caller-key"}, {"X-API-Key": "wrong"}])
async def test_callers_keys_and_wrong_keys_are_refused(headers):
    client = app_with(sandbox=False, connectors_admin_keys="ops:s3cret-admin-key", connectors_api_keys="bot:caller-key")
    r = await client.get("/connections", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert "s3cret" not in r.text and "caller-key" not in r.text


async def test_without_admin_keys_the_admin_api_is_closed_outside_the_sandbox():
    r = await app_with(sandbox=False).get("/connections")
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"
    assert "CONNECTORS_ADMIN_KEYS" in r.json()["error"]["message"]


async def test_an_open_sandbox_admits_the_admin_api():
    assert (await app_with(sandbox=True).get("/connections")).json() == {"admin": "sandbox-admin"}
