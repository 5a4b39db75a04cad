"""`ccm serve` as a deployment runs it: several server processes (``--workers``, ``[api] workers``,
``CCM_API_WORKERS``; 0 is one per CPU core), each answering from the same database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from engine.web.app import server_processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read()
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not answer: {process.stdout.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)


def test_zero_means_one_process_per_core_and_a_number_is_taken_as_given():
    assert server_processes(0) == max(1, min(os.cpu_count() or 1, 8))
    assert server_processes(1) == 1 and server_processes(5) == 5


@pytest.mark.parametrize("how", ["option", "environment"])
def test_ccm_serve_starts_the_configured_worker_processes_and_each_answers(tmp_path, how):
    env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{tmp_path / 'ccm.sqlite'}", "CCM_OUTPUT_FOLDER": str(tmp_path / "d")}
    check = subprocess.run([sys.executable, "-c", "from engine.cli.main import app; app()", "check", "--as-of", "2024-09-01"],
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert check.returncode in (0, 1), check.stderr
    port = _free_port()
    args = ["serve", "--port", str(port), "--log-level", "warning"]
    if how == "option":
        args += ["--workers", "2"]
    else:
        env["CCM_API_WORKERS"] = "2"
    process = subprocess.Popen([sys.executable, "-c", "from engine.cli.main import app; app()", *args], env=env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", process)
        deadline = time.monotonic() + 60                       # uvicorn's supervisor starts the workers one by one
        while len([c for c in _children(process.pid) if _is_server(c)]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len([c for c in _children(process.pid) if _is_server(c)]) == 2
        for day in ("2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"):   # misses, whichever process takes them
            body = json.loads(_wait_for(f"{base}/api/parties/LAO/obligations?as_of={day}", process))
            assert body["as_of"] == day and body["party"]["iso3"] == "LAO"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _is_server(pid: int) -> bool:
    """A uvicorn worker (multiprocessing's spawn child), not its resource tracker."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ")
    except OSError:
        return False
    return b"multiprocessing" in command and b"resource_tracker" not in command
