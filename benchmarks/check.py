"""Benchmark of ``ccm check``: time and peak memory per number of parties, each beside the bare
evaluation loop of the same parties measured in the same run.

    python benchmarks/check.py [--parties 1000,10000,100000] [--postgres URL | --no-postgres]
                               [--runs first,again,next-day]

For each party count (the embedded registry, then synthetic States Parties) and each database:

* "loop" (the baseline): a child process that builds the same registry and evaluator and runs
  the engine's every-party loop (``Evaluator.each``), keeping nothing: no store, no digest.
* "check": a child process that runs ``check_and_digest`` (what ``ccm check`` runs: the check's
  transaction and the digest files) "first" on an empty database (every obligation inserted),
  "again" the same day (nothing changes) and "next day" (reasons updated, statuses moved).

Each measurement runs in a fresh process (peak RSS is per process). The table prints the
absolute figures and the ratios check/loop for time and memory; "us/party" and "KB/party"
show whether time is linear and memory flat in the number of parties. Issue 13's target for
100,000 parties: under 500 MB.

Databases: SQLite in a temporary folder; PostgreSQL in a database of the benchmark's own
(``ccm_bench_<random>``), created on the server of ``--postgres`` (default: the tests' server,
never its ``test`` database) and dropped at the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

# benchmarks/ holds scripts named like packages (engine.py): import the project, not them.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

AS_OF = date(2025, 6, 1)
PG_SERVER = os.environ.get("CCM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RUNS = {"first": AS_OF, "again": AS_OF, "next-day": AS_OF + timedelta(days=1)}
# The store keeps a party in a String(3) column and looks codes up upper-cased: three characters
# from these 64 (all equal to their upper case) give 262,144 codes, where A-Z alone stop at 17,576.
CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "".join(
    chr(c) for c in range(0xC0, 0xDF) if chr(c).upper() == chr(c) and c != 0xD7)


def synthetic_codes(count: int) -> list[str]:
    codes = ["".join(t) for t in itertools.islice(itertools.product(CODE_ALPHABET, repeat=3), count)]
    if len(codes) < count:
        raise SystemExit(f"at most {len(CODE_ALPHABET) ** 3:,} synthetic parties (three-character codes)")
    return codes


def synthetic_registry(count: int):
    """The embedded treaty and meetings with ``count`` generated States Parties (a third with
    stockpiles, a fifth contaminated, some completions)."""
    import random

    from engine.core.model import Completion, Declaration, Participant, Registry
    from engine.registry.load import load_registry

    base = load_registry()
    rng = random.Random(42)
    participants, declarations, completions = {}, [], []
    start = date(2008, 12, 3)
    for code in synthetic_codes(count):
        deposit = start + timedelta(days=rng.randrange(0, 16 * 365))
        participants[code] = Participant(iso3=code, name=f"State {code}", signature_date=start, instrument="ratification",
                                         deposit_date=deposit, provisional_application_date=None,
                                         withdrawal_effective_date=None, evidence="", notes="synthetic", sources=())
        if rng.random() < 0.33:
            declarations.append(Declaration(code, 3, "stockpile_at_eif", None, "", False, None, "", ()))
            if rng.random() < 0.5:
                completions.append(Completion(code, 3, deposit + timedelta(days=rng.randrange(200, 3000)), "day",
                                              None, "", "", ()))
        if rng.random() < 0.2:
            declarations.append(Declaration(code, 4, "contaminated_at_eif", None, "", None, None, "", ()))
    return Registry(treaty=base.treaty, participants=participants, meetings=base.meetings,
                    declarations=tuple(declarations), completions=tuple(completions), decisions=())


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    """One measurement in this process; prints a JSON line."""
    from engine.backends import Evaluator
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry
    from engine.runtime.settings import load_settings

    registry = synthetic_registry(args.parties) if args.parties else load_registry()
    settings = load_settings()
    evaluator = Evaluator(load_rulebook(), registry, settings.backend,
                          receipts_complete_from=settings.receipts_complete_from)
    ready_mb = peak_mb()
    if args.child == "loop":
        t = time.perf_counter()
        obligations = errors = 0
        for outcome in evaluator.each(AS_OF):
            obligations += len(outcome.evaluation.obligations) if outcome.evaluation else 0
            errors += outcome.error is not None
        print(json.dumps({"runs": [{"run": "loop", "seconds": time.perf_counter() - t, "obligations": obligations,
                                    "errors": errors, "parties": len(registry.participants)}], "ready_mb": ready_mb, "peak_mb": peak_mb()}))
        return
    from engine.check.run import check_and_digest
    from engine.store import database as store

    store.upgrade(args.url)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for label in args.runs.split(","):
            t = time.perf_counter()
            result, _context, _paths = check_and_digest(args.url, evaluator, RUNS[label], Path(folder))
            results.append({"run": label, "seconds": time.perf_counter() - t, "engine": result.timings["engine"],
                            "obligations": result.counts["obligations"], "changes": result.counts["changes"],
                            "listed": len(result.obligations), "peak_mb": peak_mb()})
    print(json.dumps({"runs": results, "ready_mb": ready_mb, "peak_mb": peak_mb()}))


def measure(kind: str, parties: int, url: str = "", runs: str = "") -> dict:
    command = [sys.executable, __file__, "--child", kind, "--parties", str(parties), "--url", url, "--runs", runs]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{kind} with {parties} parties failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class OwnPostgres:
    """A database of the benchmark's own on the given server, dropped at the end."""

    def __init__(self, server_url: str):
        import sqlalchemy as sa

        self.sa = sa
        url = sa.engine.make_url(server_url)
        self.admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.name = f"ccm_bench_{uuid.uuid4().hex[:10]}"
        self.url = url.set(database=self.name).render_as_string(hide_password=False)

    def fresh(self) -> str:
        with self.admin.connect() as connection:
            connection.execute(self.sa.text(f'DROP DATABASE IF EXISTS "{self.name}"'))
            connection.execute(self.sa.text(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def drop(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(self.sa.text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self.admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parties", default="1000,10000", help="comma-separated synthetic party counts "
                        "(the embedded registry is always measured first)")
    parser.add_argument("--postgres", default=PG_SERVER, help="a URL on the PostgreSQL server to use "
                        "(its database is not touched: the benchmark creates and drops its own)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--runs", default="first,again,next-day")
    parser.add_argument("--child", choices=("loop", "check"), help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.parties = int(args.parties)
        return child(args)

    counts = [0] + [int(n) for n in args.parties.split(",") if n]
    postgres = None if args.no_postgres else OwnPostgres(args.postgres)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for parties in counts:
                loop = measure("loop", parties)
                base = loop["runs"][0]
                label = parties or "embedded"
                n = base["parties"]
                rows.append(("-", label, "loop (baseline)", base["obligations"], "", "", base["seconds"],
                             base["seconds"] / n * 1e6, 1.0, loop["peak_mb"], loop["peak_mb"] * 1024 / n, 1.0))
                databases = [("SQLite", lambda p=parties: f"sqlite:///{Path(folder) / f'p{p}.sqlite'}")]
                if postgres is not None:
                    databases.append(("PostgreSQL", postgres.fresh))
                for db_name, make_url in databases:
                    data = measure("check", parties, make_url(), args.runs)
                    for run in data["runs"]:
                        rows.append((db_name, label, run["run"], run["obligations"], run["changes"], run["listed"],
                                     run["seconds"], run["seconds"] / n * 1e6, run["seconds"] / base["seconds"],
                                     run["peak_mb"], run["peak_mb"] * 1024 / n, run["peak_mb"] / loop["peak_mb"]))
    finally:
        if postgres is not None:
            postgres.drop()
    print(f"ccm check as of {AS_OF.isoformat()} (check_and_digest: the transaction and the digest files), each "
          "beside the bare evaluation loop of the same parties (Evaluator.each, no store), measured in this run")
    print("| database | parties | run | obligations | changes | digest rows | s | us/party | x loop | "
          "peak MB | KB/party | x loop |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for db, parties, run, obligations, changes, listed, seconds, per, ratio, mb, kb, mem_ratio in rows:
        print(f"| {db} | {parties} | {run} | {obligations} | {changes} | {listed} | {seconds:.2f} | {per:.0f} | "
              f"{ratio:.2f} | {mb:.0f} | {kb:.1f} | {mem_ratio:.2f} |")


if __name__ == "__main__":
    main()
