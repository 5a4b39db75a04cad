"""Start-up of the query commands: whole-process time of ``ccm deadlines PARTY --json`` and ``ccm explain``
beside the floor, the same output computed by a script that imports only the core (no settings, no
SQLAlchemy, no typer, no rich), measured in the same run, alternating, median of several runs.

    python benchmarks/cli.py [--runs 15] [--party LAO] [--entry engine.cli.launch:main]

Each command runs twice: with no database, and with a SQLite record initialised by ``ccm check``
that holds no event of the party. The floor's output is checked to be the command's, byte for byte.
Target: each command within 2x its floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import json, sys
from datetime import date
from engine.core.evaluate import Evaluator
from engine.core.rulebook import load_rulebook
from engine.registry.load import load_registry
party, as_of, obligation = sys.argv[1], date.fromisoformat(sys.argv[2]), sys.argv[3]
ev = Evaluator(load_rulebook(), load_registry(), "durable")
evaluation = ev.evaluate(party, as_of)
if obligation == "-":
    print(json.dumps(evaluation.to_json(), ensure_ascii=False, indent=1))
else:
    from engine.core.explain import explain
    print(json.dumps(explain(evaluation, ev.rulebook, evaluation.find(obligation)[0]).to_json(), ensure_ascii=False, indent=1))
"""


def _time(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {result.stderr}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--party", default="LAO")
    parser.add_argument("--obligation", default="ccm.art4.clearance")
    parser.add_argument("--as-of", default="2025-06-01")
    parser.add_argument("--entry", default="engine.cli.launch:main", help="The `ccm` entry point, module:function.")
    args = parser.parse_args()
    module, function = args.entry.split(":")
    ccm = [sys.executable, "-c", f"from {module} import {function}; {function}()"]
    queries = {"deadlines --json": (["deadlines", args.party, "--json", "--as-of", args.as_of], "-"),
               "explain --json": (["explain", args.party, args.obligation, "--json", "--as-of", args.as_of], args.obligation)}

    rows = []
    with tempfile.TemporaryDirectory(prefix="ccm-cli-bench-") as folder:
        base = {**os.environ, "CCM_BACKEND": "durable", "CCM_RECEIPTS_COMPLETE_FROM": "",
                "CCM_OUTPUT_FOLDER": str(Path(folder) / "digests")}
        databases = {"no database": {**base, "CCM_DATABASE_URL": f"sqlite:///{Path(folder) / 'absent.sqlite'}"},
                     "record without the party's events": {**base, "CCM_DATABASE_URL": f"sqlite:///{Path(folder) / 'ccm.sqlite'}"}}
        check = subprocess.run([sys.executable, "-c", "from engine.cli.main import app; app()", "check", "--as-of", args.as_of],
                               env=databases["record without the party's events"], capture_output=True, text=True, timeout=600)
        if check.returncode not in (0, 1):
            sys.exit(f"ccm check failed: {check.stderr}")
        bare = [_time([sys.executable, "-c", "pass"], base)[0] for _ in range(args.runs)]
        for (label, env) in databases.items():
            for name, (command, obligation) in queries.items():
                ours, floor = [], []
                for _ in range(args.runs):            # alternating, so that the machine's load weighs on both alike
                    t, out = _time([*ccm, *command], env)
                    ours.append(t)
                    t, expected = _time([sys.executable, "-c", FLOOR, args.party, args.as_of, obligation], env)
                    floor.append(t)
                    if out != expected:
                        sys.exit(f"`ccm {' '.join(command)}` and the floor print different outputs")
                rows.append((f"ccm {name}, {label}", statistics.median(ours), statistics.median(floor)))

    print(f"Whole-process wall time, median of {args.runs} runs (entry {args.entry}; `python -c pass`: "
          f"{statistics.median(bare) * 1000:.0f} ms)\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'command':{width}} | {'ccm ms':>7} | {'floor ms':>8} | ratio (target <= 2x)")
    print(f"{'-' * width}-|-{'-' * 7}-|-{'-' * 8}-|-{'-' * 20}")
    for label, ours, floor in rows:
        print(f"{label:{width}} | {ours * 1000:>7.0f} | {floor * 1000:>8.0f} | {ours / floor:.2f}x "
              f"{'met' if ours / floor <= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
