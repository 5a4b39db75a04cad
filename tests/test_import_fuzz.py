"""Property-based tests of ``ccm import`` and ``ccm contacts import`` (issue 11): for any bytes and
any rows, the outcome is success or exit status 2 with a sentence; never a traceback (the runner
re-raises any exception), never a partial write (a refusal changes nothing; a success writes
exactly what it reports). On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store import database as store

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
COLUMNS = ["party", "kind", "year", "received", "symbol", "source"]
HEADER = (",".join(COLUMNS) + "\n").encode()

any_text = st.text(st.characters(blacklist_categories=()), max_size=30)        # surrogates and controls included
printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)  # what UTF-8 can carry
row = st.fixed_dictionaries({
    "party": st.one_of(st.sampled_from(["LBN", "Lebanon", "LAO", "CHE", "Atlantis", ""]), printable),
    "kind": st.one_of(st.sampled_from(["initial", "annual", "retention"]), printable),
    "year": st.one_of(st.integers(2010, 2026).map(str), st.sampled_from(["", "99999", "-5", "0000", "２０２４"]), printable),
    "received": st.one_of(st.dates().map(lambda d: d.isoformat()),
                          st.sampled_from(["2012-04-30", "20250429", "2024-W18-1", "9999-12-31"]), printable),
    "symbol": st.one_of(st.just(""), printable, st.sampled_from(["=1+1", "@SUM(1)", "S" * 201])),
    "source": st.one_of(st.just(""), printable),
})


def recorded(url: str) -> int:
    with store.reader_session(url) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(store.RecordedEventRow))


def outcome(ccm, url, path) -> None:
    before = recorded(url)
    code, out = ccm("import", str(path))
    after = recorded(url)
    assert "Traceback" not in out
    if code == 0:
        created = int(re.search(r"Imported (\d+) receipt", out).group(1))
        assert after - before == created
    else:
        assert code == 2 and out.startswith(("error:", "Initialised")) and "error:" in out, out
        assert after == before, "a refused import wrote something"


@pytest.fixture
def ready(db_url):
    store.upgrade(db_url)
    return db_url


@SETTINGS
@given(data=st.binary(max_size=600), header=st.booleans(), suffix=st.sampled_from([".csv", ".json"]))
def test_import_of_arbitrary_bytes(ready, ccm, tmp_path, data, header, suffix):
    path = tmp_path / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes((HEADER if header and suffix == ".csv" else b"") + data)
    outcome(ccm, ready, path)


@SETTINGS
@given(rows=st.lists(row, max_size=6))
def test_import_of_structured_csv_rows(ready, ccm, tmp_path, rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    outcome(ccm, ready, path)


@SETTINGS
@given(rows=st.lists(st.one_of(row, st.dictionaries(any_text, st.one_of(any_text, st.integers(), st.none(),
                                                                           st.lists(st.integers(), max_size=2)),
                                                    max_size=4)), max_size=5))
def test_import_of_structured_json_entries(ready, ccm, tmp_path, rows):
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(rows), encoding="utf-8")       # lone surrogates travel as \\ud800 escapes
    outcome(ccm, ready, path)


@SETTINGS
@given(data=st.binary(max_size=400), rows=st.lists(st.tuples(printable, printable, printable), max_size=4))
def test_contacts_import_of_arbitrary_input(ready, ccm, tmp_path, data, rows):
    from engine.store.mailing import ContactRow

    def contacts() -> int:
        with store.reader_session(ready) as session:
            return session.scalar(sa.select(sa.func.count()).select_from(ContactRow))

    for content in (b"party,email,language\n" + data,
                    ("party,email,language\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)).encode("utf-8")):
        path = tmp_path / f"{uuid.uuid4().hex}.csv"
        path.write_bytes(content)
        before = contacts()
        code, out = ccm("contacts", "import", str(path))
        assert "Traceback" not in out
        if code == 0:
            assert re.search(r"Imported (\d+) contact", out)
        else:
            assert code == 2 and "error:" in out and contacts() == before, out
