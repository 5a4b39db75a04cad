"""The import contracts of pyproject.toml ([tool.importlinter]): the engine's layers import
downwards only, the engine never imports notifiers, no cycle between the modules of a package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


def test_every_engine_package_has_its_place_in_the_layers():
    # a new sub-package left out of the list would be free to import anything
    layers = next(c for c in _contracts() if c["id"] == "engine-layers")["layers"]
    packages = sorted(f"engine.{p.name}" for p in (ROOT / "engine").iterdir() if (p / "__init__.py").exists())
    assert sorted(layers) == packages


def test_a_layer_violation_is_reported_with_the_importing_line(tmp_path):
    # the contracts must catch what they are for: the core importing the store
    for package in ("engine", "notifiers"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    dates = tmp_path / "engine" / "core" / "dates.py"
    dates.write_text(dates.read_text(encoding="utf-8") + "\nfrom engine.store import database  # noqa\n", encoding="utf-8")
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})   # the copy, not the installed tree
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "engine.core.dates -> engine.store.database" in done.stdout
