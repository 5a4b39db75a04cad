"""SMTP delivery: host, port, STARTTLS or TLS and user from config.toml; the password from the environment variable it names."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import EmailMessage

from engine.record.addresses import AddressError, check_address
from notifiers.base import DeliveryError, wire_policy
from notifiers.config import SmtpConfig


class SmtpNotifier:
    """One connection, opened on first use and reused; any failure becomes a DeliveryError."""

    name = "smtp"

    def __init__(self, config: SmtpConfig):
        self.config = config
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        context = ssl.create_default_context()
        if c.security == "tls":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=context)
        else:
            connection = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
            if c.security == "starttls":
                connection.starttls(context=context)
        if c.user:
            password = c.password()
            if password is None:
                connection.close()
                raise DeliveryError(f"[smtp] user is {c.user!r} but the environment variable {c.password_env} "
                                    "holding the password is not set", connection=True)
            connection.login(c.user, password)
        return connection

    def send(self, message: EmailMessage, recipients: list[str] | None = None) -> dict[str, str]:
        """Send to ``recipients`` (default: every To and Cc address). Returns the recipients the
        server refused while accepting the others ({address: answer}).

        Raises DeliveryError: ``connection`` when the server cannot be reached, times out or
        refuses the sender (the run stops); transient for a 4xx; permanent (this letter only)
        for a 5xx, an address that cannot be mailed, or a non-ASCII address the server cannot
        carry (no SMTPUTF8).
        """
        if recipients is None:
            recipients = [a.addr_spec for name in ("To", "Cc") for h in message.get_all(name, [])
                          for a in h.addresses]
        refused: dict[str, str] = {}
        envelope: list[str] = []
        for address in dict.fromkeys(recipients):
            try:
                envelope.append(check_address(address).text)
            except AddressError as error:
                refused[address] = f"not sent: {error}"
        if not envelope:
            raise DeliveryError("no recipient can be mailed: " + "; ".join(refused.values()), transient=False,
                                refused=refused)
        sender = message["From"].addresses[0].addr_spec if message["From"] else self.config.user
        international = not all(a.isascii() for a in [sender, *envelope]) or any(
            not a.addr_spec.isascii() for name in ("From", "To", "Cc", "Reply-To") for h in message.get_all(name, [])
            for a in h.addresses)
        try:
            if self._connection is None:
                self._connection = self._connect()
            connection = self._connection
            options: tuple[str, ...] = ()
            if international:
                connection.ehlo_or_helo_if_needed()
                if not connection.has_extn("smtputf8"):
                    wide = [a for a in envelope if not a.isascii()] or ["a header address"]
                    raise DeliveryError(f"the server {self.config.host} does not announce SMTPUTF8, needed for "
                                        f"{', '.join(wide)}; give an ASCII address for this State", transient=False,
                                        refused={a: "no SMTPUTF8 on the server" for a in envelope})
                options = ("SMTPUTF8", "BODY=8BITMIME")
            data = message.as_bytes(policy=wire_policy(message, utf8=international, linesep="\r\n"))
            answers = connection.sendmail(sender, envelope, data, mail_options=options)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as error:
            replies = {a: _answer(code, text) for a, (code, text) in error.recipients.items()}
            refused.update(replies)
            permanent = all(code >= 500 for code, _ in error.recipients.values())
            raise DeliveryError(f"SMTP refused every recipient: {'; '.join(f'{a}: {t}' for a, t in replies.items())}",
                                transient=not permanent, refused=refused) from error
        except smtplib.SMTPSenderRefused as error:
            self.close()
            raise DeliveryError(f"SMTP refused the sender {error.sender}: {_answer(error.smtp_code, error.smtp_error)}",
                                connection=True) from error
        except (smtplib.SMTPDataError, smtplib.SMTPNotSupportedError) as error:
            # This message refused (smtplib has reset the session): 4xx retried later, 5xx final for it.
            code = getattr(error, "smtp_code", 550)
            raise DeliveryError(f"SMTP {_answer(code, getattr(error, 'smtp_error', str(error)))}",
                                transient=code < 500) from error
        except smtplib.SMTPResponseException as error:
            # HELO, STARTTLS, AUTH or MAIL refused: every letter would meet it, so none is failed for
            # it; the run stops and they are retried once the server or the settings are fixed.
            self.close()
            raise DeliveryError(f"SMTP {_answer(error.smtp_code, error.smtp_error)}", connection=True) from error
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            self.close()
            raise DeliveryError(f"SMTP {self.config.host}:{self.config.port}: {error.__class__.__name__}: {error}",
                                connection=True) from error
        except (UnicodeError, ValueError, TypeError) as error:
            # The message cannot be written for this server (a header it cannot encode): this letter only.
            raise DeliveryError(f"the message cannot be sent: {error.__class__.__name__}: {error}",
                                transient=False) from error
        refused.update({a: _answer(code, text) for a, (code, text) in answers.items()})
        return refused

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):  # a connection already gone is closed
                self._connection.quit()
            self._connection = None


def _answer(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"
