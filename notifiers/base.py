"""The one interface every notifier implements, and the RFC 5322 message every letter becomes."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime
from typing import Protocol


class DeliveryError(Exception):
    """A delivery that did not happen; retried later. ``transient`` is False for a 5xx refusal;
    ``connection`` is True when the server could not be reached or timed out (the run stops trying)."""

    def __init__(self, message: str, transient: bool = True, connection: bool = False):
        super().__init__(message)
        self.transient = transient
        self.connection = connection


class Notifier(Protocol):
    """Delivers one message; returns normally only once the message was accepted.

    Raises DeliveryError otherwise. Delivering the same message twice must be harmless to the
    receiver: it carries the same Message-ID (at-least-once delivery).
    """

    name: str

    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


def message_id(key: str, domain: str) -> str:
    """A stable Message-ID from the idempotency key.

    >>> message_id("LBN|ccm.art7.annual_report|2024|reminder1", "example.org")
    '<ccm-a22adabf04aea8e07c0b45d6aba76652@example.org>'
    """
    return f"<ccm-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def build_message(*, sender: str, to: list[str], cc: list[str], subject: str, text: str, html: str, msg_id: str,
                  key: str, reference: str, language: str, date: datetime, reply_to: str = "") -> EmailMessage:
    """A multipart/alternative message (plain text, then HTML), UTF-8 throughout."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = msg_id
    message["X-CCM-Reference"] = reference
    message["X-CCM-Key"] = key
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    message["Content-Language"] = language        # after set_content, which drops Content-* headers
    return message
