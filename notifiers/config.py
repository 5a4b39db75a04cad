"""The [letters], [smtp] and [scheduler] tables of config.toml over the packaged defaults, frozen."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from engine.runtime.settings import Settings, SettingsError, load_settings
from notifiers.planner import Policy, PolicyError

LANGUAGES = ("en", "fr", "es", "zh")
NOTIFIERS = ("outbox", "smtp")
SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class Signer:
    sender: dict[str, str]
    short: dict[str, str]
    signature: dict[str, str]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str
    user: str
    password_env: str
    timeout_seconds: float

    def password(self) -> str | None:
        """The password from the environment variable named in config (None when unset)."""
        return os.environ.get(self.password_env) if self.password_env else None


@dataclass(frozen=True)
class SchedulerConfig:
    hour: int
    minute: int
    retry_every_minutes: int
    misfire_grace_seconds: int


@dataclass(frozen=True)
class LettersConfig:
    policy: Policy
    signers: dict[str, Signer]
    notifier: str
    outbox: Path
    sender_address: str
    reply_to: str
    cc: tuple[str, ...]
    reference_prefix: str
    message_id_domain: str
    retry_first_seconds: int
    retry_max_seconds: int
    first_run_limit: int
    smtp: SmtpConfig
    scheduler: SchedulerConfig
    database_url: str
    output_folder: Path
    auto_send: bool = False          # over SMTP: approve each mailing without review

    @property
    def needs_approval(self) -> bool:
        """Over SMTP a mailing waits for `ccm letters approve` unless auto_send; the outbox (files) never waits."""
        return self.notifier == "smtp" and not self.auto_send


def defaults() -> dict[str, Any]:
    text = (resources.files("notifiers") / "templates" / "defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "kinds":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_letters_config(settings: Settings | None = None, overrides: dict[str, Any] | None = None) -> LettersConfig:
    """Read the tables, apply environment overrides (CCM_NOTIFIER, CCM_OUTBOX_FOLDER, CCM_SMTP_HOST,
    CCM_SMTP_PORT). Raises SettingsError (or PolicyError) with a sentence naming the key."""
    settings = settings or load_settings()
    data: dict[str, Any] = settings.file_data     # read and type-checked once by load_settings
    merged = _merge(defaults(), {k: data[k] for k in ("letters", "smtp", "scheduler") if k in data})
    if overrides:
        merged = _merge(merged, overrides)
    letters, smtp, scheduler = merged["letters"], merged["smtp"], merged["scheduler"]
    where = settings.config_path or "config.toml"
    notifier = os.environ.get("CCM_NOTIFIER") or letters["notifier"]
    if notifier not in NOTIFIERS:
        raise SettingsError(f"{where}: [letters] notifier is {notifier!r}; use outbox or smtp")
    signers = {}
    for name, table in letters.get("signers", {}).items():
        for part in ("sender", "short", "signature"):
            missing = [lang for lang in LANGUAGES if lang not in table.get(part, {})]
            if missing:
                raise SettingsError(f"{where}: [letters.signers.{name}] {part} has no text for {', '.join(missing)}")
        signers[name] = Signer(dict(table["sender"]), dict(table["short"]), dict(table["signature"]))
    policy = Policy.from_toml(letters)
    for kind in policy.kinds:
        if kind.signer not in signers:
            raise PolicyError(f"[letters.kinds.{kind.kind}] signer: {kind.signer!r} is not among [letters.signers] "
                              f"({', '.join(sorted(signers))})")
    security = smtp["security"]
    if security not in SECURITY:
        raise SettingsError(f"{where}: [smtp] security is {security!r}; use starttls, tls or none")
    if "password" in smtp:
        raise SettingsError(f"{where}: [smtp] password must not be written in the file; put it in the environment "
                            f"variable named by password_env ({smtp.get('password_env')})")
    hour, _, minute = str(scheduler["time"]).partition(":")
    try:
        hour_n, minute_n = int(hour), int(minute or 0)
        assert 0 <= hour_n < 24 and 0 <= minute_n < 60
    except (ValueError, AssertionError):
        raise SettingsError(f"{where}: [scheduler] time is {scheduler['time']!r}; write it as HH:MM (UTC)") from None
    outbox = Path(os.environ.get("CCM_OUTBOX_FOLDER") or letters["outbox"])
    if not outbox.is_absolute():
        outbox = settings.output_folder / outbox
    return LettersConfig(
        policy=policy, signers=signers, notifier=notifier, outbox=outbox, sender_address=letters["from"],
        reply_to=letters.get("reply_to", ""), cc=tuple(letters.get("cc", ())),
        reference_prefix=letters["reference_prefix"], message_id_domain=letters["message_id_domain"],
        retry_first_seconds=int(letters["retry_first_seconds"]), retry_max_seconds=int(letters["retry_max_seconds"]),
        first_run_limit=int(letters.get("first_run_limit", 100)),
        smtp=SmtpConfig(host=os.environ.get("CCM_SMTP_HOST") or smtp["host"],
                        port=int(os.environ.get("CCM_SMTP_PORT") or smtp["port"]), security=security,
                        user=smtp.get("user", ""), password_env=smtp.get("password_env", ""),
                        timeout_seconds=float(smtp.get("timeout_seconds", 30))),
        scheduler=SchedulerConfig(hour=hour_n, minute=minute_n, retry_every_minutes=int(scheduler["retry_every_minutes"]),
                                  misfire_grace_seconds=int(float(scheduler["misfire_grace_days"]) * 86400)),
        database_url=settings.database_url, output_folder=settings.output_folder,
        auto_send=_boolean(letters.get("auto_send", False), f"{where}: [letters] auto_send"))


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{where} is {value!r}; write true or false")
    return value
