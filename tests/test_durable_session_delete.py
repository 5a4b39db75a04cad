"""durable_rules 2.0.28 crashes when a session in which no action ran is deleted; the adapter avoids it."""

import os
import subprocess
import sys
import textwrap

# The crash is a free() of a pointer the C engine never initialised, certain only when the heap
# holds garbage there (on Python 3.12 and 3.13 it happens to hold zeros): glibc's MALLOC_PERTURB_
# fills every fresh allocation with one non-zero byte.
PERTURBED_HEAP = {**os.environ, "MALLOC_PERTURB_": "165"}

RAW = textwrap.dedent('''
    import json
    from durable import engine as de
    class Host(de.Host):
        def _run(self):
            pass
    host = Host()
    host.register_rulesets({"t": {"r": {"all": [{"a": {"k": "x"}}, {"b": {"k": "y"}}], "run": lambda c: None}}})
    ruleset = host.get_ruleset("t")
    ruleset.assert_facts([{"id": "1", "sid": "s1", "k": "x"}])   # half a join: no action runs
    ruleset.delete_state("s1")
    print("deleted")
''')


def test_raw_durable_rules_crashes_deleting_a_session_where_no_action_ran():
    result = subprocess.run([sys.executable, "-c", RAW], check=False, capture_output=True, text=True, timeout=60,
                            env=PERTURBED_HEAP)
    assert result.returncode < 0 or result.returncode == 139, (result.returncode, result.stdout, result.stderr)
    assert "deleted" not in result.stdout


def test_the_adapter_survives_a_party_whose_facts_fire_no_rule():
    # Afghanistan before its deposit (8 Sep 2011): its facts complete no rule's pattern.
    code = textwrap.dedent('''
        from datetime import date
        from engine.backends import Evaluator
        from engine.registry.load import load_registry
        from engine.core.rulebook import load_rulebook
        evaluator = Evaluator(load_rulebook(), load_registry(), "durable")
        for _ in range(3):
            evaluation = evaluator.evaluate("AFG", date(2011, 8, 20))
        print(evaluation.status, len(evaluation.obligations))
    ''')
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                            env=PERTURBED_HEAP)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["signatory", "0"]
