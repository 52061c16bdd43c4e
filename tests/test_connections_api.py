"""Stored connections end to end: the admin API and calls by connection_id against the sandbox, over loopback."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

from connections.crypto import generate_key
from sandbox import SANDBOX_CREDENTIALS
from tests.conftest import Service, error_of, make_settings, start_service
from tests.test_api_handoff import DESIGN_BODY

ZENDESK = {"crm_type": "zendesk", "display_name": "Acme support", "credentials": SANDBOX_CREDENTIALS["zendesk"]}
LIVECHAT = {
    "chat_type": "livechat",
    "display_name": "Acme live agents",
    "credentials": {k: v for k, v in SANDBOX_CREDENTIALS["livechat"].items() if k != "license_id"},
    "settings": {"license_id": SANDBOX_CREDENTIALS["livechat"]["license_id"], "group_id": 0},
}


def create(svc: Service, body: dict) -> dict:
    r = svc.post("/connections", body)
    assert r.status_code == 201, r.text
    return r.json()


def no_secret_in(text: str, credentials: dict) -> None:
    for name, value in credentials.items():
        if "token" in name or "key" in name or "secret" in name:
            assert str(value) not in text, name


def test_a_tenant_connected_once_is_called_by_connection_id_alone(svc: Service):
    created = create(svc, ZENDESK)
    cid = created["id"]
    assert created["crm_type"] == "zendesk" and created["status"] == "active"
    assert set(created["credentials"]) == {"subdomain", "email", "api_token"}
    assert all(len(f) == 8 and int(f, 16) >= 0 for f in created["credentials"].values())
    for read in (svc.client.get(f"{svc.url}/connections/{cid}"), svc.client.get(f"{svc.url}/connections")):
        assert read.status_code == 200
        no_secret_in(read.text, ZENDESK["credentials"])
    assert svc.client.get(f"{svc.url}/connections/{cid}").json() == created

    check = svc.post(f"/connections/{cid}/test", {}).json()
    assert check["ok"] is True and check["vendor"] == "zendesk"

    r = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "1001"
    assert svc.post("/crm/customer", {"connection_id": cid, "crm_type": "zendesk", "customer_id": "1001"}).status_code == 200


def test_config_and_connection_id_together_is_a_422_and_a_wrong_type_a_400(svc: Service):
    cid = create(svc, ZENDESK)["id"]
    both = svc.post("/crm/customer", {"connection_id": cid, "config": {"subdomain": "x"}, "customer_id": "1"})
    assert both.status_code == 422 and "not both" in error_of(both)["message"]
    neither_type = svc.post("/crm/customer", {"customer_id": "1"})
    assert neither_type.status_code == 422 and "crm_type" in error_of(neither_type)["message"]
    wrong = svc.post("/crm/customer", {"connection_id": cid, "crm_type": "hubspot", "customer_id": "1"})
    assert wrong.status_code == 400 and error_of(wrong)["code"] == "invalid_request"
    as_chat = svc.post("/handoff/status", {"connection_id": cid, "handoff_id": "PJ0MRSHTDG"})
    assert as_chat.status_code == 400 and "crm connection" in error_of(as_chat)["message"]


def test_update_is_used_at_once_and_delete_is_connection_not_found(svc: Service):
    cid = create(svc, ZENDESK)["id"]
    assert svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"}).status_code == 200  # now cached
    before = svc.client.get(f"{svc.url}/connections/{cid}").json()
    r = svc.client.patch(f"{svc.url}/connections/{cid}", json={"credentials": {"api_token": "invalid"}})
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["credentials"]["api_token"] != before["credentials"]["api_token"]
    assert after["credentials"]["email"] == before["credentials"]["email"] and after["updated_at"] > before["updated_at"]
    failed = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"})
    assert failed.status_code == 502 and error_of(failed)["code"] == "crm_auth_failed"
    assert svc.post(f"/connections/{cid}/test", {}).json()["code"] == "crm_auth_failed"

    reauth = svc.client.patch(f"{svc.url}/connections/{cid}", json={"status": "needs_reauth"})
    assert reauth.json()["status"] == "needs_reauth"
    blocked = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"})
    assert error_of(blocked)["code"] == "crm_auth_failed" and "re-authorization" in error_of(blocked)["message"]

    assert svc.client.delete(f"{svc.url}/connections/{cid}").status_code == 204
    gone = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"})
    assert gone.status_code == 404 and error_of(gone)["code"] == "connection_not_found"
    assert error_of(svc.client.get(f"{svc.url}/connections/{cid}"))["code"] == "connection_not_found"
    assert svc.client.delete(f"{svc.url}/connections/{cid}").status_code == 404


def test_invalid_credentials_are_a_422_naming_each_problem_without_echoing_a_secret(svc: Service):
    body = {
        "crm_type": "zendesk",
        "display_name": "Broken",
        "credentials": {"subdomain": "acme", "api_token": "tok-very-secret-1"},  # no email
        "settings": {"oauth_token": "tok-very-secret-2", "no_such_option": 1},
    }
    r = svc.post("/connections", body)
    assert r.status_code == 422
    error = error_of(r)
    assert "tok-very-secret" not in r.text
    locs = {".".join(p["loc"]) for p in error["details"]}
    assert {"body.settings.oauth_token", "body.settings.no_such_option"} <= locs
    assert error["crm_type"] == "zendesk"
    bad_host = svc.post("/connections", {**ZENDESK, "credentials": {**ZENDESK["credentials"], "subdomain": "a.b"}})
    assert bad_host.status_code == 400 and error_of(bad_host)["code"] == "invalid_config"
    unknown = svc.post("/connections", {**ZENDESK, "crm_type": "pipedrive"})
    assert error_of(unknown)["code"] == "unsupported_crm"
    both = svc.post("/connections", {**ZENDESK, "chat_type": "livechat"})
    assert both.status_code == 422
    taken = create(svc, {**ZENDESK, "id": "acme-zendesk-dup"})["id"]
    assert error_of(svc.post("/connections", {**ZENDESK, "id": taken}))["code"] == "connection_conflict"


def test_a_handoff_by_connection_id(svc: Service):
    cid = create(svc, LIVECHAT)["id"]
    body = {k: v for k, v in copy.deepcopy(DESIGN_BODY).items() if k not in ("config", "chat_type")}
    body["context"]["call_id"] = "call_by_connection"
    r = svc.post("/handoff/create", {**body, "connection_id": cid})
    assert r.status_code == 201, r.text
    status = svc.post("/handoff/status", {"connection_id": cid, "handoff_id": r.json()["handoff_id"]})
    assert status.status_code == 200 and status.json()["status"] == "assigned"
    as_crm = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"})
    assert as_crm.status_code == 400


def test_readiness_checks_the_connection_store(svc: Service):
    checks = svc.client.get(f"{svc.url}/ready").json()["checks"]
    assert checks["connections_store"]["ok"] is True


# --- a file-backed store across restarts: key rotation, re-encryption, admin keys, audit ----------------


def running(tmp_path, **settings):
    """A service with the sandbox over a persistent SQLite file; the caller stops it."""
    defaults = dict(database_url=f"sqlite:///{tmp_path}/connectors.db", connectors_admin_keys="ops:admin-key-1")
    return start_service(make_settings(**{**defaults, **settings}))


def stop(server, thread) -> None:
    server.should_exit = True
    thread.join(timeout=10)


def test_rotate_the_key_and_reencrypt(tmp_path, service: Service):
    import httpx

    old, new = generate_key(), generate_key()
    audit_file = tmp_path / "audit.log"
    admin = {"Authorization": "Bearer admin-key-1"}
    with httpx.Client(timeout=10, trust_env=False) as client:
        server, thread, url = running(tmp_path, connections_encryption_key=old, audit_log=str(audit_file))
        try:
            assert client.post(f"{url}/connections", json=ZENDESK).status_code == 401  # the admin API needs its key
            cid = client.post(f"{url}/connections", json=ZENDESK, headers=admin).json()["id"]
        finally:
            stop(server, thread)

        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CONNECTIONS_", "DATABASE_"))},
            "DATABASE_URL": f"sqlite:///{tmp_path}/connectors.db",
            "CONNECTIONS_ENCRYPTION_KEY": new,
            "CONNECTIONS_ENCRYPTION_KEY_PREVIOUS": old,
        }
        done = subprocess.run([sys.executable, "-m", "connections", "reencrypt"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "re-encrypted 1 connection(s)" in done.stdout

        server, thread, url = running(tmp_path, connections_encryption_key=new)  # the old key is gone now
        try:
            r = client.post(f"{url}/crm/customer", json={"connection_id": cid, "customer_id": "1001"})
            assert r.status_code == 200, r.text
        finally:
            stop(server, thread)
    lines = [json.loads(line) for line in audit_file.read_text().splitlines()]
    [created] = [line for line in lines if line["operation"] == "connection_create" and line["status"] == 201]
    assert created["caller"] == "admin:ops" and created["ids"] == {"connection_id": cid} and created["vendor"] == "zendesk"
    assert not any("sandbox-token" in line for line in audit_file.read_text().splitlines())
