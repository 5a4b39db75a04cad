"""E-mail addresses and header values: checked with email-validator, made safe for SMTP.

An internationalised domain is sent in its ASCII (IDNA) form, which every server accepts; a
non-ASCII local part (``zürich@...``) can only travel over a server that announces SMTPUTF8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

#: Longest address SMTP carries (RFC 5321 path limit).
MAX_ADDRESS = 254
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


class AddressError(ValueError):
    """An address that cannot be mailed; the message says why."""


@dataclass(frozen=True)
class Address:
    text: str              # as sent: ASCII domain, local part as given
    smtputf8: bool         # the local part is not ASCII: the server must announce SMTPUTF8


def check_address(address: str) -> Address:
    """The address as it will be sent, or AddressError with a sentence.

    >>> check_address("user@exämple.org")
    Address(text='user@xn--exmple-cua.org', smtputf8=False)
    >>> check_address("zürich@exämple.org").smtputf8
    True
    """
    if _CONTROL.search(address):
        raise AddressError(f"{address!r} holds a control character")
    if len(address) > MAX_ADDRESS:
        raise AddressError(f"{address[:40]!r}... is longer than {MAX_ADDRESS} characters")
    try:
        found = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise AddressError(f"{address!r} is not an e-mail address: {error}") from None
    return Address(text=f"{found.local_part}@{found.ascii_domain}", smtputf8=found.smtputf8)


def header_text(value: object, limit: int = 998) -> str:
    """A header value with no line break or other control character (each becomes one space).

    A recorded text (an id, a symbol) may reach a header; a CR or LF in it would end the header
    early or inject another one, and the email package refuses it, so it never gets there.

    >>> header_text("REQ-1\\r\\nBcc: x@evil.example")
    'REQ-1 Bcc: x@evil.example'
    """
    return " ".join(_CONTROL.sub(" ", str(value)).split())[:limit]
