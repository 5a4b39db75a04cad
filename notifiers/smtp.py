"""SMTP delivery: host, port, STARTTLS or TLS and user from config.toml; the password from the environment variable it names."""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage

from notifiers.base import DeliveryError
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
                                    "holding the password is not set", transient=True)
            connection.login(c.user, password)
        return connection

    def send(self, message: EmailMessage) -> None:
        try:
            if self._connection is None:
                self._connection = self._connect()
            refused = self._connection.send_message(message)
        except smtplib.SMTPResponseException as error:
            self.close()
            text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
            raise DeliveryError(f"SMTP {error.smtp_code} {text}", transient=error.smtp_code < 500) from error
        except smtplib.SMTPRecipientsRefused as error:
            self.close()
            raise DeliveryError(f"SMTP refused every recipient: {error.recipients}") from error
        except (smtplib.SMTPException, OSError, socket.timeout) as error:
            self.close()
            raise DeliveryError(f"SMTP {self.config.host}:{self.config.port}: {error.__class__.__name__}: {error}",
                                connection=True) from error
        if refused:
            # Accepted for some recipients: recorded as sent (a retry would duplicate it for the others).
            message.add_header("X-CCM-Refused", ", ".join(refused))

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except Exception:
                pass
            self._connection = None
