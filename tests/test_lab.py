"""`make lab` opens the course: JupyterLab starts from this environment and serves notebook 00.

A browser cannot be opened here, so the test starts the same server headless and asks it, over
HTTP on localhost, for the lab page and for notebook 00 with its outputs.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_serves_notebook_00(tmp_path):
    port, token = free_port(), "llmcourse-test"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--allow-root"]
    env_home = {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    import os

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env_home})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=5) as r:
                    assert r.status == 200 and b"JupyterLab" in r.read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
                assert time.time() < deadline, "JupyterLab did not start within 60 s"
                time.sleep(0.5)
        url = f"{base}/api/contents/notebooks/00_welcome.ipynb?token={token}"
        with urllib.request.urlopen(url, timeout=10) as r:
            model = json.load(r)
        assert model["type"] == "notebook"
        assert model["content"]["cells"][0]["source"].startswith("# 00")
        with urllib.request.urlopen(f"{base}/api/kernelspecs?token={token}", timeout=10) as r:
            assert "python3" in json.load(r)["kernelspecs"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
