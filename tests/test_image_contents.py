"""What the Docker image copies (everything .dockerignore lets through) is enough to start the service."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def image_files(dest: Path) -> None:
    """Copy the repository as `COPY . .` would, honouring .dockerignore's top-level patterns."""
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        parts = Path(name).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in ignored) or not (ROOT / name).exists():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def test_the_image_contents_start_the_service(tmp_path: Path):
    image_files(tmp_path)
    assert not (tmp_path / "tests").exists() and (tmp_path / "server.py").exists()
    probe = "import server; server.create_app(); print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "SANDBOX": "true"},
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
