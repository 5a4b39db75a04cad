"""Benchmark of ``ccm check``: the embedded registry and 10,000 synthetic parties, on SQLite
and PostgreSQL; time and peak memory beside the engine-only time of the same run.

    python benchmarks/check.py [--parties 10000] [--postgres URL] [--no-postgres]

Each measurement runs in a fresh child process (peak RSS is per process). "first" is the
check on an empty database (every obligation inserted), "again" the same check repeated
(nothing changes), "next day" the check one day later (reasons updated, statuses moved).
"`ccm check` CLI" is the command as a user runs it, in a process of its own (interpreter,
imports, check, digest files): the median wall time of 5 runs, beside the in-process figures.
Targets: embedded registry under 1 s end to end; 10,000 parties under 30 s and 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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
PG_DEFAULT = os.environ.get("CCM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def synthetic_registry(count: int):
    """The embedded treaty and meetings with ``count`` generated States Parties (a third with
    stockpiles, a fifth contaminated, some completions)."""
    import random
    import string

    from engine.core.model import Completion, Declaration, Participant, Registry
    from engine.registry.load import load_registry

    base = load_registry()
    rng = random.Random(42)
    codes = ["".join(t) for t in __import__("itertools").product(string.ascii_uppercase, repeat=3)][:count]
    participants, declarations, completions = {}, [], []
    start = date(2008, 12, 3)
    for code in codes:
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


def child(args) -> None:
    """One measurement in this process; prints a JSON line."""
    from engine.check.run import run_check
    from engine.core.evaluate import Evaluator
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry
    from engine.runtime.settings import load_settings
    from engine.store import database as store

    t0 = time.perf_counter()
    registry = synthetic_registry(args.parties) if args.parties else load_registry()
    evaluator = Evaluator(load_rulebook(), registry, load_settings().backend)
    store.upgrade(args.url) if store.current_revision(args.url) is None else None
    setup = time.perf_counter() - t0
    results = []
    for label, day in (("first", AS_OF), ("again", AS_OF), ("next day", AS_OF + timedelta(days=1))):
        result = run_check(args.url, evaluator, day)
        results.append({"run": label, "total": result.timings["total"], "engine": result.timings["engine"],
                        "write": result.timings["write"], "obligations": result.counts["obligations"],
                        "changes": result.counts["changes"], "updated": result.counts["updated"]})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"setup": setup, "runs": results, "peak_mb": peak_mb}))


def cli_wall(url: str, folder: str, runs: int = 5) -> float:
    """`ccm check` as a user runs it (interpreter start, imports, check, digest files): the
    median wall time of ``runs`` runs on the database the in-process runs left."""
    env = {**os.environ, "CCM_DATABASE_URL": url, "CCM_OUTPUT_FOLDER": folder}
    command = [sys.executable, "-c", "from engine.cli.main import app; app()", "check", "--as-of", AS_OF.isoformat()]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(command, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parties", type=int, default=10_000)
    parser.add_argument("--postgres", default=PG_DEFAULT)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import sqlalchemy as sa

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        backends = [("SQLite", lambda tag: f"sqlite:///{Path(folder) / (tag + '.sqlite')}")]
        admin = None
        if not args.no_postgres:
            admin = sa.create_engine(args.postgres)
            schemas = []

            def pg(tag, schemas=schemas):
                schema = "bench_" + uuid.uuid4().hex[:10]
                with admin.begin() as connection:
                    connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                schemas.append(schema)
                return f"{args.postgres}{'&' if '?' in args.postgres else '?'}options=-csearch_path%3D{schema}"

            backends.append(("PostgreSQL", pg))
        for db_name, make_url in backends:
            for parties in (0, args.parties):
                url = make_url(f"p{parties}")
                command = [sys.executable, __file__, "--child", "--url", url, "--parties", str(parties)]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                data = json.loads(out.strip().splitlines()[-1])
                for run in data["runs"]:
                    rows.append((db_name, parties or "embedded (125)", run["run"], run["obligations"], run["changes"],
                                 run["engine"], run["total"], data["peak_mb"]))
                if not parties:
                    wall = cli_wall(url, str(Path(folder) / "digests"))
                    rows.append((db_name, "embedded (125)", "`ccm check` CLI (median of 5)", data["runs"][0]["obligations"], "", None,
                                 wall, None))
        if admin is not None:
            with admin.begin() as connection:
                for schema in schemas:
                    connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    print("| database | parties | run | obligations | changes | engine s | total s | peak MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for db_name, parties, run, obligations, changes, engine, total, peak in rows:
        print(f"| {db_name} | {parties} | {run} | {obligations} | {changes} | "
              f"{'' if engine is None else f'{engine:.2f}'} | {total:.2f} | {'' if peak is None else f'{peak:.0f}'} |")


if __name__ == "__main__":
    main()
