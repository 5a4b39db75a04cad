"""The project's runtime dependencies, kept here because one of them is a directory of this checkout.

durable_rules 2.0.28, the rules engine, builds on Python 3.13 but does not import there: its C
extension calls ``PyEval_CallObject``, which 3.13 removed, and no release fixes it. On 3.13 it is
built from ``third_party/durable_rules`` instead (that sdist with the call renamed). A dependency on
a directory must be an absolute ``file:`` URL, which pyproject.toml cannot express, so the list is
computed here. See the README, "Python 3.13".
"""

from pathlib import Path

from setuptools import setup

PATCHED_DURABLE_RULES = Path(__file__).resolve().parent / "third_party" / "durable_rules"
if not (PATCHED_DURABLE_RULES / "setup.py").is_file():
    raise SystemExit(f"{PATCHED_DURABLE_RULES} is missing: build from a full checkout of the repository.")

setup(
    install_requires=[
        'durable-rules==2.0.28 ; python_version < "3.13"',
        f'durable-rules @ {PATCHED_DURABLE_RULES.as_uri()} ; python_version >= "3.13"',
        "python-dateutil>=2.9",
        "SQLAlchemy>=2.0,<3",
        "alembic>=1.13",
        "APScheduler>=3.11,<4",
        "Jinja2>=3.1",
        "Babel>=2.14",
        "typer>=0.12",
        "rich>=13",
        "psycopg[binary]>=3.1",
        "fastapi>=0.110",
        "uvicorn[standard]>=0.29",   # uvloop and httptools: the server's loop and HTTP parser in C
        "icalendar>=6",
        "platformdirs>=3",     # the user's config and data folders when no config sets them
        "swagger-ui-bundle-v2>=5",   # /docs served from the server, offline (no CDN)
        "weasyprint>=60",      # the letters' PDF for letterhead (ccm letters preview --pdf)
        "email-validator>=2.1",
    ],
)
