"""Benchmark of ``ccm import`` on a large file: 100,000 valid report receipts (about 50 MB of CSV),
time and peak memory beside a baseline that only reads the same file with the csv module.

    python benchmarks/import_large.py [--rows 100000] [--bytes-per-row 500] [--postgres URL]

The engine backend is config.toml's default (durable), or CCM_BACKEND=reference.

Each measurement runs in a fresh child process (peak RSS is per process). "csv only" reads and
splits every row and does nothing else; "import (refused)" is the same file with one bad row at
the end (everything is read and checked, nothing written); "import" validates and writes all.
Every row prints its time and peak memory as ratios to the "csv only" baseline of the same run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

# benchmarks/ holds scripts named like packages (engine.py): import the project, not them.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

COLUMNS = ["party", "kind", "year", "received", "symbol", "source"]


def make_file(path: Path, rows: int, bytes_per_row: int, bad_last: bool) -> int:
    """Valid receipts of the States Parties: annual reports for years after entry into force, received
    on 30 April of the next year; each with its own symbol, padded to about ``bytes_per_row``."""
    from engine.backends import Evaluator
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry

    evaluator = Evaluator(load_rulebook(), load_registry(), "reference")
    parties = []
    for iso3 in sorted(evaluator.registry.participants):
        evaluation = evaluator.evaluate(iso3, date(2025, 6, 1))
        if evaluation.entry_into_force and evaluation.entry_into_force.year < 2020 and not evaluation.withdrawal_effective:
            parties.append((iso3, evaluation.entry_into_force))
    generator = random.Random(11)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for n in range(rows):
            iso3, eif = generator.choice(parties)
            year = generator.randint(eif.year, 2023)
            received = date(year + 1, 4, 30) + timedelta(days=generator.randint(0, 200))
            symbol = f"CCM/MSP/{year}/{iso3}/{n}"
            pad = max(0, bytes_per_row - 40 - len(symbol))
            source = "https://www.clusterconvention.org/reports/" + "x" * pad
            writer.writerow([iso3, "annual", year, received.isoformat(), symbol, source])
        if bad_last:
            writer.writerow(["LBN", "annual", "2012", "2012-13-45", "bad", ""])
    return path.stat().st_size


def child(mode: str, file: str, url: str) -> None:
    start = time.perf_counter()
    outcome = ""
    if mode == "csv":
        with open(file, encoding="utf-8", newline="") as handle:
            outcome = f"{sum(1 for _ in csv.reader(handle)) - 1} rows read"
    else:
        from engine.backends import Evaluator
        from engine.core.rulebook import load_rulebook
        from engine.record.events import ImportError_, import_file
        from engine.registry.load import load_registry
        from engine.store import database as store

        store.upgrade(url)
        evaluator = Evaluator(load_rulebook(), load_registry(), os.environ.get("CCM_BACKEND", "durable"))
        try:
            created, skipped = import_file(url, evaluator, Path(file), today=date(2025, 6, 1))
            outcome = f"{created} created, {skipped} skipped"
        except ImportError_ as error:
            outcome = "refused: " + str(error).splitlines()[-1].strip()[:60]
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "outcome": outcome}))


def measure(mode: str, file: Path, url: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", mode, str(file), url], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bytes-per-row", type=int, default=500)
    parser.add_argument("--postgres", default=None, help="also import into this PostgreSQL database (a new schema)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        good, bad = Path(folder) / "receipts.csv", Path(folder) / "receipts-bad.csv"
        size = make_file(good, args.rows, args.bytes_per_row, bad_last=False)
        make_file(bad, args.rows, args.bytes_per_row, bad_last=True)
        print(f"{args.rows:,} rows, {size / 1e6:.1f} MB, backend {os.environ.get('CCM_BACKEND', 'durable')}")
        runs = [("csv only (baseline)", "csv", good, ""),
                ("import refused (SQLite)", "import", bad, f"sqlite:///{folder}/refused.sqlite"),
                ("import (SQLite)", "import", good, f"sqlite:///{folder}/ccm.sqlite")]
        schema = None
        if args.postgres:
            import sqlalchemy as sa

            schema = f"bench_import_{os.getpid()}"
            with sa.create_engine(args.postgres).begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in args.postgres else "?"
            runs.append(("import (PostgreSQL)", "import", good, f"{args.postgres}{sep}options=-csearch_path%3D{schema}"))
        try:
            print(f"{'':26} {'seconds':>8} {'x csv':>7} {'peak MB':>8} {'x csv':>7}  outcome")
            base = None
            for label, mode, file, url in runs:
                m = measure(mode, file, url)
                base = base or m
                print(f"{label:26} {m['seconds']:8.1f} {m['seconds'] / base['seconds']:7.1f} {m['peak_mb']:8.0f} "
                      f"{m['peak_mb'] / base['peak_mb']:7.2f}  {m['outcome']}")
        finally:
            if schema:
                import sqlalchemy as sa

                with sa.create_engine(args.postgres).begin() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
