"""A person connects a CRM in a real browser: headless Chromium, driven over the DevTools protocol, loopback only.

start -> the emulator's authorize page -> click Allow -> the service's callback page -> the connection is active
-> a /crm/customer call by connection_id works. Every wait is on a browser event, never a clock.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import tempfile
from typing import Any

import aiohttp
import pytest

from tests.conftest import Service
from tests.test_oauth_flow import SEED, pending

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-extensions", "--disable-sync", "--metrics-recording-only", "--no-default-browser-check",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",  # anything not on loopback fails
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)  # fmt: skip
BOUND_SECONDS = 60  # a ceiling on a hung browser, not a wait for timing


class Page:
    """One DevTools page session: commands, and waiting for a named event."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.ids = ws, itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        await self.ws.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == number:
                assert "error" not in message, message
                return message.get("result", {})

    async def event(self, method: str) -> dict[str, Any]:
        while True:
            message = await self.ws.receive_json()
            if message.get("method") == method:
                return message.get("params", {})

    async def evaluate(self, expression: str) -> Any:
        return (await self.call("Runtime.evaluate", expression=expression, returnByValue=True))["result"].get("value")


async def browse(svc: Service, cid: str) -> tuple[str, str]:
    """Open the start URL, click Allow, and return (callback page's heading, its path)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            while not (found := re.search(rb"DevTools listening on ws://127\.0\.0\.1:(\d+)/", await proc.stderr.readline())):
                pass
            port = int(found.group(1))
            async with aiohttp.ClientSession() as http:
                targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with http.ws_connect(url, max_msg_size=0) as ws:
                    page = Page(ws)
                    await page.call("Page.enable")
                    await page.call("Page.navigate", url=f"{svc.url}/connections/{cid}/oauth/start")
                    await page.event("Page.loadEventFired")  # the vendor's authorize page
                    assert await page.evaluate("!!document.getElementById('allow')")
                    await page.evaluate("document.getElementById('allow').click()")
                    await page.event("Page.loadEventFired")  # the service's callback page
                    heading = await page.evaluate("document.getElementById('result').textContent")
                    return heading, await page.evaluate("location.pathname")
        finally:
            proc.terminate()
            await proc.wait()


async def test_a_person_connects_salesforce_in_a_browser_and_calls_work(svc: Service):
    cid = pending(svc, "salesforce")
    heading, path = await asyncio.wait_for(browse(svc, cid), BOUND_SECONDS)
    assert (heading, path) == ("Connected", "/oauth/callback")
    assert svc.client.get(f"{svc.url}/connections/{cid}").json()["status"] == "active"
    r = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["salesforce"]})
    assert r.status_code == 200, r.text
