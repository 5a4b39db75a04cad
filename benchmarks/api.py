"""Load run against the local HTTP server: throughput and p50/p99 latency of
``GET /api/parties/{iso3}/obligations`` on cache hits and on cache misses, beside a minimal FastAPI
app served the same way (same uvicorn command, same client), with the ratios printed in the same run.

    python benchmarks/api.py [--requests 2000] [--concurrency 50] [--parties LAO,CHE,...]

What it does, all on loopback, in a temporary folder:
1. initialises a SQLite database with ``ccm check`` (not timed);
2. starts each server (``uvicorn engine.web.app:create_app --factory``; the minimal app, which
   answers the same paths with fixed bytes of the same size) in a subprocess, one at a time;
3. from a second process, sends a bounded number of requests with N concurrent clients, each
   on its own keep-alive HTTP/1.1 connection (a minimal asyncio client, so that the load
   generator costs little of the machine's CPU):
   - hits: the parties in turn, as_of fixed, every answer cached beforehand;
   - misses: every request with a different as_of (consecutive days), so that each one is evaluated;
4. prints the table.
Targets: with misses at 50 clients, p99 under 100 ms and at least 1,000 req/s.
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
from datetime import date, timedelta
from pathlib import Path

DEFAULT_PARTIES = "LAO,CHE,DEU,FRA,AFG,BGR,CHL,LBN,NOR,SWE"
HIT_DAY = "2025-06-01"
MISS_FROM = "2012-01-01"      # + one day per request: 2,000 requests end in 2017


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


def paths_for(parties: list[str], requests: int, misses: bool) -> list[str]:
    """Hits: the parties in turn on one day. Misses: a different day for every request."""
    if not misses:
        return [f"/api/parties/{iso3}/obligations?as_of={HIT_DAY}" for iso3 in parties]
    first = date.fromisoformat(MISS_FROM)
    return [f"/api/parties/{parties[i % len(parties)]}/obligations?as_of={(first + timedelta(days=i)).isoformat()}"
            for i in range(requests)]


def client_main(args: argparse.Namespace) -> None:
    paths = paths_for(args.parties.split(","), args.requests, args.misses)
    print(json.dumps(asyncio.run(_load("127.0.0.1", args.port, paths, args.requests, args.concurrency))))


# ----------------------------------------------------------------------------- the minimal app (the floor)

def minimal_app():
    """FastAPI answering the same paths with fixed JSON bytes of a typical answer's size: what the
    server, the framework and the client cost with no work behind them."""
    from fastapi import FastAPI, Response

    app = FastAPI()
    body = json.dumps({"party": {"iso3": "LAO"}, "obligations": ["x" * 60] * 40}).encode()

    @app.get("/api/parties/{iso3}/obligations")
    async def obligations(iso3: str, as_of: str | None = None):
        return Response(body, media_type="application/json", headers={"ETag": '"fixed"', "Cache-Control": "no-cache"})

    return app




# ----------------------------------------------------------------------------- the driver

def _uvicorn_kind() -> str:
    """Which event loop and HTTP parser uvicorn's "auto" picks here (uvloop and httptools, installed with
    uvicorn[standard], or asyncio and h11)."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} loop, {http} parser"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        return (time.perf_counter() - started) * 1000, response.status


def _serve(app: list[str], env: dict[str, str], folder: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", *app, "--factory", "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)],
                              env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(f"{base}/api/parties/LAO/obligations?as_of={HIT_DAY}")     # also loads rulebook and registry
            return server, base
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start: {server.stderr.read().decode(errors='replace')}")
            time.sleep(0.1)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def _run_load(base: str, args: argparse.Namespace, misses: bool) -> dict:
    port = base.rsplit(":", 1)[1]
    load = subprocess.run([sys.executable, __file__, "--client", "--port", port, "--requests", str(args.requests),
                           "--concurrency", str(args.concurrency), "--parties", args.parties]
                          + (["--misses"] if misses else []), check=False, capture_output=True, text=True, timeout=900)
    if load.returncode != 0:
        sys.exit(f"the load process failed: {load.stderr}")
    return json.loads(load.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--parties", default=DEFAULT_PARTIES, help="ISO3 codes the clients cycle through.")
    parser.add_argument("--workers", type=int, default=None,
                        help="uvicorn worker processes, the same for both apps; default as `ccm serve`: one per CPU core.")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--misses", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    if args.workers is None:   # asked of a child: this folder's engine.py would shadow the engine package here
        ask = "from engine.web.app import server_processes; print(server_processes(0))"
        args.workers = int(subprocess.run([sys.executable, "-c", ask], cwd=Path(__file__).resolve().parent.parent,
                                          check=True, capture_output=True, text=True).stdout)

    results = {}
    with tempfile.TemporaryDirectory(prefix="ccm-api-bench-") as folder:
        env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{Path(folder) / 'ccm.sqlite'}",
               "CCM_OUTPUT_FOLDER": str(Path(folder) / "digests")}
        check = subprocess.run([sys.executable, "-c", "from engine.cli.main import app; app()", "check"], env=env,
                               check=False, capture_output=True, text=True, timeout=600)
        if check.returncode not in (0, 1):
            sys.exit(f"ccm check failed: {check.stderr}")
        here = str(Path(__file__).resolve().parent)
        server, base = _serve(["--app-dir", here, "api:minimal_app"], env, folder, args.workers)
        try:
            results["minimal FastAPI app (fixed bytes)"] = _run_load(base, args, misses=True)
        finally:
            _stop(server)
        server, base = _serve(["engine.web.app:create_app"], env, folder, args.workers)
        try:
            for _ in range(4 * args.workers):                                   # every hit cached in every worker
                for iso3 in args.parties.split(","):
                    _get(f"{base}/api/parties/{iso3}/obligations?as_of={HIT_DAY}")
            results["ccm, cache hits"] = _run_load(base, args, misses=False)
            results["ccm, cache misses (a new as_of per request)"] = _run_load(base, args, misses=True)
        finally:
            _stop(server)

    floor = results["minimal FastAPI app (fixed bytes)"]
    print(f"GET /api/parties/{{iso3}}/obligations, {args.requests} requests, {args.concurrency} keep-alive clients "
          f"(second process), {len(args.parties.split(','))} parties; uvicorn with {args.workers} worker process(es) each, "
          f"{_uvicorn_kind()}\n")
    width = max(len(name) for name in results)
    print(f"{'server':{width}} | {'req/s':>6} | {'p50 ms':>6} | {'p99 ms':>6} | {'max ms':>6} | errors | "
          f"req/s vs minimal | p99 vs minimal")
    print(f"{'-' * width}-|--------|--------|--------|--------|--------|------------------|---------------")
    for name, r in results.items():
        print(f"{name:{width}} | {r['throughput']:>6.0f} | {r['p50_ms']:>6.1f} | {r['p99_ms']:>6.1f} | {r['max_ms']:>6.1f} | "
              f"{r['errors']:>6} | {r['throughput'] / floor['throughput']:>15.2f}x | {r['p99_ms'] / floor['p99_ms']:>13.2f}x")
        if r["errors"]:
            print(f"  errors: {r['error_sample']}")
    miss = results["ccm, cache misses (a new as_of per request)"]
    print(f"\nTargets, misses at {args.concurrency} clients: p99 < 100 ms: {'met' if miss['p99_ms'] < 100 else 'NOT met'} "
          f"({miss['p99_ms']:.0f} ms); >= 1,000 req/s: {'met' if miss['throughput'] >= 1000 else 'NOT met'} "
          f"({miss['throughput']:.0f} req/s; the minimal app: {floor['throughput']:.0f} req/s on the same machine).")


if __name__ == "__main__":
    main()
