"""Load run against the local HTTP server: throughput and p50/p99 latency of
``GET /api/parties/{iso3}/obligations`` beside the CLI's time for the same query.

    python benchmarks/api.py [--requests 2000] [--concurrency 50] [--parties LAO,CHE,...]

What it does, all on loopback, in a temporary folder:
1. initialises a SQLite database with ``ccm check`` (not timed);
2. times ``ccm deadlines LAO --json`` (a new process each time: the CLI's real cost);
3. starts the server (``uvicorn engine.web.app:create_app --factory``) in a subprocess;
4. from a second process, sends a bounded number of requests with N concurrent clients, each
   on its own keep-alive HTTP/1.1 connection (a minimal asyncio client, so that the load
   generator costs little of the machine's CPU), and prints the table.
5. serves a minimal FastAPI app the same way (uvicorn, one process; the same route answering a
   fixed JSON body of the same size) and loads it alike: the baseline printed beside.
Target: p99 under 50 ms at 50 concurrent clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DEFAULT_PARTIES = "LAO,CHE,DEU,FRA,AFG,BGR,CHL,LBN,NOR,SWE"
# The baseline server: the same route on a bare FastAPI app, answering a fixed body (argv[1]: its size).
MINIMAL_APP = """
import sys, uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
app, body = FastAPI(), b'{"x": "' + b'y' * int(sys.argv[1]) + b'"}'
@app.get("/api/parties/{iso3}/obligations")
async def obligations(iso3: str):
    return Response(body, media_type="application/json")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


# ----------------------------------------------------------------------------- the client process

async def _worker(host: str, port: int, paths: list[str], counter: list[int], total: int,
                  latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while counter[0] < total:
            index = counter[0]
            counter[0] += 1
            path = paths[index % len(paths)]
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200 or not body.startswith(b"{"):
                errors.append(f"{status} {path}")
    finally:
        writer.close()


async def _load(host: str, port: int, paths: list[str], total: int, concurrency: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    counter = [0]
    started = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, paths, counter, total, latencies, errors) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {"requests": len(latencies), "concurrency": concurrency, "seconds": elapsed,
            "throughput": len(latencies) / elapsed, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "max_ms": ordered[-1] * 1000, "mean_ms": statistics.fmean(ordered) * 1000, "errors": len(errors),
            "error_sample": errors[:5]}


def client_main(args: argparse.Namespace) -> None:
    paths = [f"/api/parties/{iso3}/obligations" for iso3 in args.parties.split(",")]
    print(json.dumps(asyncio.run(_load("127.0.0.1", args.port, paths, args.requests, args.concurrency))))


# ----------------------------------------------------------------------------- the driver

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ccm(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from engine.cli.main import app; app()", *args], env=env,
                          check=False, capture_output=True, text=True, timeout=300)


def _get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        return (time.perf_counter() - started) * 1000, response.status


def _load_server(command: list[str], env: dict, folder: str, args) -> tuple[dict, int]:
    """Start a server, wait for it, load it from a second process; (the client's stats, body size)."""
    port = _free_port()
    server = subprocess.Popen([*command, str(port)], env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/parties/LAO/obligations", timeout=30) as r:
                    size = len(r.read())
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the baseline server did not start: {server.stderr.read().decode(errors='replace')}")
                time.sleep(0.1)
        load = subprocess.run([sys.executable, __file__, "--client", "--port", str(port), "--requests", str(args.requests),
                               "--concurrency", str(args.concurrency), "--parties", args.parties],
                              capture_output=True, text=True, timeout=600, check=True)
        return json.loads(load.stdout), size
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--parties", default=DEFAULT_PARTIES, help="ISO3 codes the clients cycle through.")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return

    with tempfile.TemporaryDirectory(prefix="ccm-api-bench-") as folder:
        env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{Path(folder) / 'ccm.sqlite'}",
               "CCM_OUTPUT_FOLDER": str(Path(folder) / "digests")}
        check = _ccm(["check"], env)
        if check.returncode not in (0, 1):
            sys.exit(f"ccm check failed: {check.stderr}")
        cli_times = []
        for _ in range(3):
            started = time.perf_counter()
            result = _ccm(["deadlines", "LAO", "--json"], env)
            cli_times.append((time.perf_counter() - started) * 1000)
            if result.returncode != 0:
                sys.exit(f"ccm deadlines failed: {result.stderr}")

        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "engine.web.app:create_app", "--factory", "--host", "127.0.0.1",
                                   "--port", str(port), "--log-level", "warning", "--no-access-log"],
                                  env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    _get(f"{base}/openapi.json")
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        sys.exit(f"the server did not start: {server.stderr.read().decode(errors='replace')}")
                    time.sleep(0.1)
            first_ms, _ = _get(f"{base}/api/parties/LAO/obligations")          # loads rulebook and registry
            second_ms, _ = _get(f"{base}/api/parties/LAO/obligations")         # cached
            for iso3 in args.parties.split(","):                                # warm the cache
                _get(f"{base}/api/parties/{iso3}/obligations")
            load = subprocess.run([sys.executable, __file__, "--client", "--port", str(port), "--requests", str(args.requests),
                                   "--concurrency", str(args.concurrency), "--parties", args.parties],
                                  check=False, capture_output=True, text=True, timeout=600)
            if load.returncode != 0:
                sys.exit(f"the load process failed: {load.stderr}")
            stats = json.loads(load.stdout)
            size = len(urllib.request.urlopen(f"{base}/api/parties/LAO/obligations", timeout=30).read())
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        floor, _ = _load_server([sys.executable, "-c", MINIMAL_APP, str(size)], env, folder, args)

    rows = [
        ("query", f"GET /api/parties/{{iso3}}/obligations ({len(args.parties.split(','))} parties, as_of today)"),
        ("requests / concurrent clients", f"{stats['requests']} / {stats['concurrency']} (keep-alive, second process)"),
        ("errors", str(stats["errors"]) + (f" {stats['error_sample']}" if stats["errors"] else "")),
        ("throughput", f"{stats['throughput']:.0f} req/s ({stats['seconds']:.2f} s)"),
        ("latency p50", f"{stats['p50_ms']:.1f} ms"),
        ("latency p90", f"{stats['p90_ms']:.1f} ms"),
        ("latency p99", f"{stats['p99_ms']:.1f} ms  (target < 50 ms: {'met' if stats['p99_ms'] < 50 else 'NOT met'})"),
        ("latency max", f"{stats['max_ms']:.1f} ms"),
        ("baseline: minimal FastAPI app, same load", f"{floor['throughput']:.0f} req/s, p99 {floor['p99_ms']:.1f} ms"),
        ("server / baseline", (f"throughput {stats['throughput'] / floor['throughput']:.2f}x, "
                               f"p99 {stats['p99_ms'] / floor['p99_ms']:.2f}x")),
        ("server: first request (loads rulebook, registry)", f"{first_ms:.1f} ms"),
        ("server: same request again (cached)", f"{second_ms:.1f} ms"),
        ("CLI: ccm deadlines LAO --json (new process)", f"{min(cli_times):.0f} ms best of 3, {statistics.median(cli_times):.0f} ms median"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measure'.ljust(width)} | value")
    print(f"{'-' * width}-|-{'-' * 40}")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")


if __name__ == "__main__":
    main()
