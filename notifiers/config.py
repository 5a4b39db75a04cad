"""The [letters], [smtp] and [scheduler] tables of config.toml over the packaged defaults, frozen."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
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


#: What ``[letters.packs.<pack>]`` may set for one pack's notes, over the [letters] table's own value.
PACK_KEYS = {"signer": "signer", "reference_prefix": "reference_prefix", "from": "sender_address",
             "reply_to": "reply_to", "message_id_domain": "message_id_domain", "cc": "cc"}


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
    # [letters.packs.<pack>]: a pack's own signer, reference prefix, sender... (PACK_KEYS), as given
    packs: dict[str, dict[str, Any]] = field(default_factory=dict)
    signer: str | None = None        # the signer of every note (a pack's ``signer``), over each kind's

    def for_pack(self, pack: str) -> LettersConfig:
        """The mailing's settings for one pack's notes: [letters] with ``[letters.packs.<pack>]`` over it.

        A note is written under one treaty; the pack's table names who signs it and the reference
        prefix its notes bear ("APMBC/ISU"), so that no note of one treaty goes out under the other's
        name. A pack without a table takes [letters] as it is.
        """
        table = self.packs.get(pack, {})
        over: dict[str, Any] = {PACK_KEYS[key]: tuple(value) if key == "cc" else value for key, value in table.items()}
        return replace(self, **over)

    def signer_of(self, kind_signer: str | None) -> Signer:
        """Who signs a note: the pack's signer when its table names one, else the first item's kind's (isu)."""
        return self.signers[self.signer or kind_signer or "isu"]

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
    packs = _pack_tables(letters.get("packs", {}), signers, where)
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
        auto_send=_boolean(letters.get("auto_send", False), f"{where}: [letters] auto_send"), packs=packs)


def _pack_tables(tables: Any, signers: dict[str, Signer], where: object) -> dict[str, dict[str, Any]]:
    """The [letters.packs.<pack>] tables, checked: known keys of strings (``cc`` a list), a signer that exists.
    Raises SettingsError naming the key."""
    if not isinstance(tables, dict):
        raise SettingsError(f"{where}: [letters] packs must be tables, one per rule pack ([letters.packs.<pack>])")
    checked: dict[str, dict[str, Any]] = {}
    for pack, table in tables.items():
        name = f"{where}: [letters.packs.{pack}]"
        if not isinstance(table, dict):
            raise SettingsError(f"{name} must be a table")
        unknown = sorted(set(table) - set(PACK_KEYS))
        if unknown:
            raise SettingsError(f"{name}: unknown key(s) {', '.join(unknown)}; use {', '.join(PACK_KEYS)}")
        for key, value in table.items():
            wanted = list if key == "cc" else str
            if not isinstance(value, wanted) or (key == "cc" and not all(isinstance(v, str) for v in value)):
                raise SettingsError(f"{name} {key} is {value!r}; write " + ("a list of addresses" if key == "cc" else "a string"))
        if "signer" in table and table["signer"] not in signers:
            raise SettingsError(f"{name} signer: {table['signer']!r} is not among [letters.signers] ({', '.join(sorted(signers))})")
        checked[str(pack)] = dict(table)
    return checked


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{where} is {value!r}; write true or false")
    return value
