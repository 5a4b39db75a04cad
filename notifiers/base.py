"""The one interface every notifier implements, and the RFC 5322 message every letter becomes."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Protocol

from engine.record.addresses import header_text


class DeliveryError(Exception):
    """A delivery that did not happen.

    ``transient`` (server down, a timeout, a 4xx answer): retried later with backoff.
    Otherwise permanent for this letter (a 5xx refusal, an address that cannot be mailed, a
    server without SMTPUTF8 for a non-ASCII address): the letter is marked rejected and the run
    goes on. ``connection`` is True when the server could not be reached or timed out (the run
    stops trying). ``refused`` maps the recipients the server refused to its answer.
    """

    def __init__(self, message: str, transient: bool = True, connection: bool = False,
                 refused: dict[str, str] | None = None):
        super().__init__(message)
        self.transient = transient
        self.connection = connection
        self.refused = dict(refused or {})


class Notifier(Protocol):
    """Delivers one message; returns normally only once the message was accepted.

    Raises DeliveryError otherwise. Delivering the same message twice must be harmless to the
    receiver: it carries the same Message-ID (at-least-once delivery).
    """

    name: str

    def send(self, message: EmailMessage, recipients: list[str] | None = None) -> dict[str, str]:
        """Deliver to ``recipients`` (default: every To and Cc address); returns the recipients
        refused while the others were accepted, each with the server's answer."""
        ...
    def close(self) -> None: ...


def message_id(key: str, domain: str) -> str:
    """A stable Message-ID from the idempotency key.

    >>> message_id("LBN|ccm.art7.annual_report|2024|reminder1", "example.org")
    '<ccm-a22adabf04aea8e07c0b45d6aba76652@example.org>'
    """
    return f"<ccm-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def wire_policy(message: EmailMessage, *, utf8: bool, linesep: str | None = None) -> EmailPolicy:
    """The message's own policy with UTF-8 headers (RFC 6532) on or off, and its line ends if given.

    Raises TypeError for a message built with the compat32 policy, which cannot write UTF-8 headers.
    """
    policy = message.policy
    if not isinstance(policy, EmailPolicy):
        raise TypeError(f"a message with the {type(policy).__name__} policy cannot be written with UTF-8 headers")
    return policy.clone(utf8=utf8, linesep=linesep or policy.linesep)


def build_message(*, sender: str, to: list[str], cc: list[str], subject: str, text: str, html: str, msg_id: str,
                  key: str, reference: str, language: str, date: datetime, reply_to: str = "") -> EmailMessage:
    """A multipart/alternative message (plain text, then HTML), UTF-8 throughout.

    Every header value passes :func:`engine.record.addresses.header_text`: recorded text (an id in
    the key, a symbol in the subject) never carries a line break into a header.
    """
    message = EmailMessage()
    message["From"] = header_text(sender)
    message["To"] = header_text(", ".join(to))
    if cc:
        message["Cc"] = header_text(", ".join(cc))
    if reply_to:
        message["Reply-To"] = header_text(reply_to)
    message["Subject"] = header_text(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = header_text(msg_id)
    message["X-CCM-Reference"] = header_text(reference)
    message["X-CCM-Key"] = header_text(key)
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    message["Content-Language"] = header_text(language)        # after set_content, which drops Content-* headers
    return message
