"""`python -m sandbox` runs the emulators alone, as the README says, for tools and vendor SDKs."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def test_emulators_run_alone_and_answer_on_their_printed_urls():
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        urls = {}
        while "control" not in urls:  # each line is "name: url"; blocking reads, no timing
            line = proc.stdout.readline()
            assert line, "the sandbox exited before printing its URLs"
            name, _, url = line.strip().partition(": ")
            urls[name] = url
        assert {"zendesk", "salesforce", "hubspot", "freshdesk", "livechat"} <= set(urls)
        auth = "Basic " + base64.b64encode(b"agent@example.com/token:t").decode()
        r = httpx.get(f"{urls['zendesk']}/api/v2/tickets/12345.json", headers={"Authorization": auth}, trust_env=False)
        assert r.status_code == 200 and r.json()["ticket"]["subject"] == "Product not working"
        assert r.headers["x-rate-limit"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
