"""The default notifier: each letter becomes an RFC 5322 .eml file in a folder (no set-up)."""

from __future__ import annotations

import os
import re
from email.message import EmailMessage
from pathlib import Path

from notifiers.base import wire_policy


class OutboxNotifier:
    """Writes ``<folder>/<reference>.eml`` atomically; sending again rewrites the same file."""

    name = "outbox"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path_for(self, message: EmailMessage) -> Path:
        reference = message.get("X-CCM-Reference") or message["Message-ID"]
        return self.folder / (re.sub(r"[^A-Za-z0-9._-]+", "-", str(reference)).strip("-") + ".eml")

    def send(self, message: EmailMessage, recipients: list[str] | None = None) -> dict[str, str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(message)
        temporary = path.with_suffix(".eml.tmp")
        # UTF-8 headers (RFC 6532): an address with a non-ASCII local part is written as it is.
        temporary.write_bytes(message.as_bytes(policy=wire_policy(message, utf8=True)))
        os.replace(temporary, path)
        return {}

    def close(self) -> None:
        pass
