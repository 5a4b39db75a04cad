"""The daily check over several packs: each pack's check (engine/check/run.py) in one shared
transaction, and one digest with a section per treaty.

Each pack reads and writes only its own rows (the store keys obligations, changes and check
runs by pack), gets only its own recorded events (engine/registry/treaties.py), and stores its
own check run; a crash or an unwritable digest leaves every pack's previous state. The
registry_* tables hold one registry: the first pack's.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from engine.check.run import (
    CheckResult,
    DigestError,
    check_digest_folder,
    digest_context,
    digest_paths,
    load_events_in,
    render_digest,
    run_check,
)
from engine.record.contacts import load_contacts
from engine.registry.treaties import Treaties
from engine.runtime.logs import get
from engine.store.database import writer_session


def label(pack: str) -> str:
    """How the digest and the CLI name a pack's section: its name in capitals (CCM, APMBC)."""
    return pack.upper()


def check_treaties(url: str, treaties: Treaties, as_of: date, folder: Path, now: datetime | None = None,
                   commit: bool = True) -> tuple[list[CheckResult], list[dict[str, Any]], tuple[Path, Path] | None]:
    """Every selected pack's check and one digest: (results, digest contexts with a ``treaty`` key,
    the Markdown and HTML paths, or None with ``commit=False``)."""
    if commit:
        check_digest_folder(folder)
    contacts = load_contacts(url)
    results: list[CheckResult] = []
    contexts: list[dict[str, Any]] = []
    paths = None
    with writer_session(url) as session, session.begin():
        events = load_events_in(session)
        for number, (name, evaluator) in enumerate(treaties.items()):
            result = run_check(url, evaluator, as_of, now, session=session, snapshot=number == 0,
                               events=treaties.events(name, events))
            context = {**digest_context(result, evaluator, contacts), "treaty": name, "treaty_label": label(name),
                       "replay": not commit}
            results.append(result)
            contexts.append(context)
        if commit:
            paths = write_combined(folder, contexts)
        else:
            session.rollback()
    log = get("check")
    for context, result in zip(contexts, results):
        c = result.counts
        log.info("check %s of %s as of %s: %s participants, %s obligations, %s change(s), %s not evaluated",
                 f"run {result.run_id}" if commit else "replay (not stored)", context["treaty"], as_of.isoformat(),
                 c["parties"], c["obligations"], c["changes"], c["errors"],
                 extra={"event": "check", "treaty": context["treaty"], "run_id": result.run_id if commit else None,
                        "as_of": as_of.isoformat(), "attention": context["attention"], "counts": c, "stored": commit})
    return results, contexts, paths


def render_combined(contexts: list[dict[str, Any]]) -> tuple[str, str]:
    """One Markdown and one HTML digest: each treaty's digest in turn, in the packs' order."""
    rendered = [render_digest(context) for context in contexts]
    markdown = "\n---\n\n".join(md for md, _ in rendered)
    first = rendered[0][1]
    head, _, rest = first.partition("<body>\n")
    bodies = [html.partition("<body>\n")[2].rpartition("</body>")[0] for _, html in rendered]
    tail = rest.rpartition("</body>")[2]
    return markdown, head + "<body>\n" + "<hr>\n".join(bodies) + "</body>" + tail


def write_combined(folder: Path, contexts: list[dict[str, Any]]) -> tuple[Path, Path]:
    """Both files of the combined digest, each written atomically (as engine/check/run.py's)."""
    markdown, html = render_combined(contexts)
    paths = digest_paths(folder, contexts[0]["as_of"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in zip(paths, (markdown, html)):
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
    except OSError as error:
        for path in (*paths, *(p.with_name(p.name + ".tmp") for p in paths)):
            path.unlink(missing_ok=True)
        raise DigestError(f"the digest cannot be written to {folder} ({error.strerror or error}); the check was not "
                          "committed. Make the folder writable, or set [output] folder (CCM_OUTPUT_FOLDER), and run "
                          "the check again") from None
    return paths
