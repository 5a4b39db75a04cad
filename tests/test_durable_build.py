"""The durable backend runs on a durable_rules build made for the running Python, from the source meant for it."""

import json
import sys
from datetime import date
from importlib import metadata
from pathlib import Path

import durable_rules_engine

from engine.backends import Evaluator
from engine.runtime.settings import load_settings

PROJECT = Path(__file__).resolve().parent.parent


def test_the_c_engine_loaded_is_the_one_built_for_this_interpreter():
    # e.g. durable_rules_engine.cpython-313-x86_64-linux-gnu.so on 3.13
    assert Path(durable_rules_engine.__file__).name.startswith(f"durable_rules_engine.{sys.implementation.cache_tag}-")


def test_python_3_13_gets_the_patched_copy_and_earlier_versions_the_pypi_release():
    distribution = metadata.distribution("durable_rules")
    if sys.version_info >= (3, 13):
        assert distribution.version == "2.0.28+py313"
        origin = json.loads(distribution.read_text("direct_url.json"))
        assert origin["url"] == (PROJECT / "third_party" / "durable_rules").as_uri()
    else:
        assert distribution.version == "2.0.28"
        assert distribution.read_text("direct_url.json") is None  # from the index, not a directory


def test_the_shipped_config_selects_durable_which_derives_obligations_through_the_c_engine(ccm_rulebook, ccm_registry,
                                                                                          monkeypatch):
    monkeypatch.delenv("CCM_BACKEND", raising=False)
    backend = load_settings(PROJECT / "config.toml").backend
    assert backend == "durable"
    evaluation = Evaluator(ccm_rulebook, ccm_registry, backend).evaluate("PER", date(2026, 11, 28))
    reference = Evaluator(ccm_rulebook, ccm_registry, "reference").evaluate("PER", date(2026, 11, 28))
    assert evaluation.obligations  # derived facts come only from actions the C engine fired
    assert evaluation.to_json() == reference.to_json()
