
# --------------------------------------------------------------------------- the record (issue 3)
# Store fixtures: every store test runs against SQLite (a temporary file) and PostgreSQL
# (CCM_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test), each
# PostgreSQL test in a schema of its own that is dropped afterwards.

import email as _smtp_email
import email.policy as _smtp_policy
import os as _record_os
import socket as _smtp_socket
import subprocess as _record_subprocess
import sys as _record_sys
import uuid as _record_uuid

import pytest as _record_pytest

RECORD_PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RECORD_PG_HOW = ("start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
                 "(database `test` must exist: `createdb -U postgres test`), or point CCM_TEST_POSTGRES_URL "
                 "at another server")


def record_postgres_url() -> str:
    return _record_os.environ.get("CCM_TEST_POSTGRES_URL", RECORD_PG_DEFAULT)


#: The record tests play an ISU that imported its whole record of receipts: from this day on, no
#: receipt means overdue (``receipts_complete_from``). The embedded default (no such day) is
#: tested apart, in tests/test_truthful.py.
COMPLETE_RECORD_FROM = "2010-08-01"


@_record_pytest.fixture(scope="session")
def record_evaluator():
    from datetime import date

    from engine.backends import Evaluator
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry

    return Evaluator(load_rulebook(), load_registry(), "durable",
                     receipts_complete_from=date.fromisoformat(COMPLETE_RECORD_FROM))


def _record_pg_schema_url(base: str):
    import sqlalchemy as sa

    schema = "t_" + _record_uuid.uuid4().hex[:12]
    try:
        admin = sa.create_engine(base)
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        _record_pytest.fail(f"PostgreSQL is not reachable at {base}: {str(error.orig).strip().splitlines()[0]}. "
                            f"This test needs it: {RECORD_PG_HOW}.", pytrace=False)
    sep = "&" if "?" in base else "?"
    return admin, schema, f"{base}{sep}options=-csearch_path%3D{schema}"


@_record_pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch):
    """An empty database URL (SQLite file or a fresh PostgreSQL schema), set as CCM_DATABASE_URL."""
    from engine.record import source as record_source
    from engine.store import database as store
    admin = schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'ccm.sqlite'}"
    else:
        admin, schema, url = _record_pg_schema_url(record_postgres_url())
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    (tmp_path / "no-config.toml").write_text("")
    monkeypatch.setenv("CCM_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("CCM_RECEIPTS_COMPLETE_FROM", COMPLETE_RECORD_FROM)
    record_source._url.cache_clear()
    yield url
    record_source._url.cache_clear()
    store.dispose_engines()
    if admin is not None:
        import sqlalchemy as sa

        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@_record_pytest.fixture
def postgres_url(tmp_path, monkeypatch):
    """A fresh PostgreSQL schema only (for tests that are about PostgreSQL)."""
    from engine.store import database as store
    admin, schema, url = _record_pg_schema_url(record_postgres_url())
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    yield url
    store.dispose_engines()
    import sqlalchemy as sa

    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@_record_pytest.fixture
def ccm():
    """Run a ccm command in-process; returns (exit code, output with whitespace collapsed)."""
    from typer.testing import CliRunner

    from engine.cli.main import app

    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, " ".join(result.output.split())

    return run


def ccm_subprocess(*args: str, env: dict | None = None, **popen):
    """Start ``ccm ARGS`` in a child process (for kill and concurrency tests)."""
    code = "from engine.cli.main import app; app()"
    return _record_subprocess.Popen([_record_sys.executable, "-c", code, *args],
                                    env={**_record_os.environ, **(env or {})}, **popen)


# --------------------------------------------------------------------------- the inference backends
# The packaged rulebook and registry, loaded once per run: the hazard and agreement tests
# evaluate thousands of parties and only read them.

@_record_pytest.fixture(scope="session")
def ccm_rulebook():
    from engine.core.rulebook import load_rulebook

    return load_rulebook()


@_record_pytest.fixture(scope="session")
def ccm_registry():
    from engine.registry.load import load_registry

    return load_registry()


@_record_pytest.fixture
def ccm_process():
    """``ccm_subprocess`` as a fixture (test modules cannot import conftest under importlib mode)."""
    return ccm_subprocess


# --------------------------------------------------------------------------- expected counts
@_record_pytest.fixture(scope="session")
def expected_obligations():
    """How many obligations the engine derives for the whole registry on a date.

    Store and check tests compare with this rather than a literal, so a registry correction
    (a row added, a judgment revised) does not turn them red for the wrong reason.
    """
    def count(evaluator, as_of) -> int:
        return sum(len(evaluation.obligations) for evaluation in evaluator.evaluate_all(as_of))
    return count


# --------------------------------------------------------------------------- the user's folders
@_record_pytest.fixture(autouse=True)
def _user_folders(tmp_path, monkeypatch):
    """The user's config and data folders (platformdirs follows XDG_*) inside the test's own folder,
    so that no test reads or writes the real ones."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


# --------------------------------------------------------------------------- a real SMTP server


class SmtpRecorder:
    """An aiosmtpd handler that keeps every message it accepts (a real SMTP server on loopback)."""

    def __init__(self):
        self.messages: list[_smtp_email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(_smtp_email.message_from_bytes(envelope.original_content, policy=_smtp_policy.default))
        return "250 OK"


@_record_pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free loopback port; ``.messages`` holds what it accepted, ``.port``
    where it listens. Test files that need another handler define their own ``smtp_server``."""
    from aiosmtpd.controller import Controller

    handler = SmtpRecorder()
    with _smtp_socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()
