"""Settings: read once from `SWITCHBOARD_*` at start-up and passed down; tests build them directly."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from channels.phone.cdr import DEFAULT_INBOUND_CONTEXTS
from notifier.quiet import quiet_window
from notifier.sms import GatewayProfile
from routing.weights import DEFAULT_CHANNEL_WEIGHTS, DEFAULT_PRIORITY_WEIGHTS, LoadWeights
from sla.calendar import BusinessCalendar, parse_calendar
from sla.regulations import RegulationBook, builtin_book, load_book


def _section(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"SWITCHBOARD_{prefix}", extra="ignore")


class DatabaseSettings(BaseSettings):
    model_config = _section("DATABASE_")

    url: str | None = None
    """SQLAlchemy async URL (postgresql+asyncpg://…); unset → SQLite file in the data directory."""
    pool_size: int = 10
    """Connections per process on PostgreSQL."""
    sqlite_busy_timeout_ms: int = 30_000
    """How long a SQLite writer waits for the lock before failing."""


class RedisSettings(BaseSettings):
    model_config = _section("REDIS_")

    url: str | None = None
    """redis:// or unix:// URL of the job queue; unset → `serve` starts an embedded server."""


class HttpSettings(BaseSettings):
    model_config = _section("HTTP_")

    host: str = "127.0.0.1"
    """Address the web process listens on."""
    port: int = 8080
    """Port the web process listens on."""
    public_url: str | None = None
    """Base URL clients see (links in notifications); unset → http://HOST:PORT."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to post the JSON web form from the browser (comma-separated, `*` for any)."""
    form_rate_limit: int = 20
    """Web form submissions accepted per client IP per minute (0 disables the limit)."""
    max_upload_mb: int = 25
    """Largest request body (all attachments of one form together), in MB."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Proxy addresses whose X-Forwarded-For is believed for the client IP (comma-separated)."""

    _split_commas = field_validator("cors_origins", "trusted_proxies", mode="before")(
        classmethod(lambda cls, v: _comma_list(v))
    )


class SmtpSettings(BaseSettings):
    model_config = _section("SMTP_")

    host: str = "127.0.0.1"
    """Address the inbound SMTP server listens on."""
    port: int = 2525
    """Port the inbound SMTP server listens on."""
    relay_url: str | None = None
    """Outbound mail relay (smtp://user:pass@host:port, smtps:// for TLS); unset → mail is written to
    DATA_DIR/mail-sink."""
    addresses: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Support addresses and their groups (support@example.com=Support,sales@example.com=Sales); empty → any
    recipient, default group."""
    max_message_mb: int = 25
    """Largest message accepted; bigger ones are refused with 552 before the body is stored."""
    sender_rate_limit: int = 30
    """Messages accepted from one sender address per hour before 451 (mail storms, loops); 0 turns it off."""
    from_address: str | None = None
    """Sender of replies on tickets whose support address is unknown; unset → the first configured address."""

    @field_validator("addresses", mode="before")
    @classmethod
    def _parse_addresses(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        mapping: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            address, separator, group = item.partition("=")
            if not separator or not address.strip() or not group.strip():
                raise ValueError(f"expected ADDRESS=GROUP, got {item!r}")
            mapping[address.strip().lower()] = group.strip()
        return mapping

    @property
    def reply_from(self) -> str:
        return self.from_address or next(iter(self.addresses), "support@localhost")


class TelegramSettings(BaseSettings):
    model_config = _section("TELEGRAM_")

    token: str | None = None
    """Bot token; unset → the Telegram channel is off."""
    api_base: str | None = None
    """Bot API base URL, for a local Bot API server."""
    thread_hours: float = 72
    """A client's Telegram message joins their open Telegram ticket if it was active within this many hours."""
    webhook_secret: str | None = None
    """Secret Telegram must send with webhook calls; unset → derived from the token (HMAC-SHA256)."""


class WebchatSettings(BaseSettings):
    model_config = _section("WEBCHAT_")

    thread_hours: float = 72
    """A visitor's message joins their last chat ticket if it is still open or was active within this many hours."""
    email_after_minutes: float = 10
    """An agent's reply the visitor has not seen after this long is emailed to them, if they left an address;
    0 → never."""
    max_message_chars: int = Field(4000, ge=1)
    """Longest chat message a visitor may send."""
    rate_limit: int = 20
    """Messages one visitor may send per minute (0 turns the limit off)."""
    history_limit: int = Field(200, ge=1)
    """Messages shown when a visitor comes back."""


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class CalendarSettings(BaseSettings):
    """The business calendar deadlines count in (until a regulations file gives each regulation its own)."""

    model_config = _section("CALENDAR_")

    timezone: str = "UTC"
    """IANA time zone of the working hours (Europe/Moscow, Europe/London)."""
    hours: str = "09:00-18:00"
    """Working hours on a working day."""
    days: str = "mon-fri"
    """Working days (mon-fri, or a list such as mon,tue,wed,thu,fri,sat)."""
    holidays: str | None = None
    """Country whose public holidays are days off (ISO code: RU, GB, DE); unset → none."""
    days_off: str = ""
    """Extra days off, comma-separated ISO dates (2026-12-31,2027-01-08)."""

    @model_validator(mode="after")
    def _valid(self) -> CalendarSettings:
        self.calendar()
        return self

    def calendar(self) -> BusinessCalendar:
        return parse_calendar(timezone_name=self.timezone, hours=self.hours, days=self.days,
                              country=self.holidays, extra_days_off=self.days_off)

    def spec(self) -> dict[str, object]:
        """As a regulations file would write it: the calendar a regulation names `default`."""
        return {"timezone": self.timezone, "hours": self.hours, "days": self.days, "holidays": self.holidays,
                "days_off": self.days_off}


class PhoneSettings(BaseSettings):
    model_config = _section("PHONE_")

    callback_hours: float = Field(2, gt=0)
    """A missed call must be called back within this many business hours (the callback regulation)."""
    timezone: str | None = None
    """Time zone of the PBX clock that wrote the CDR files' times; unset → the calendar's time zone."""
    inbound_contexts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: sorted(DEFAULT_INBOUND_CONTEXTS))
    """Asterisk dialplan contexts calls from outside arrive in (comma-separated)."""

    _split_contexts = field_validator("inbound_contexts", mode="before")(classmethod(lambda cls, v: _comma_list(v)))


def _weights(value: object, known: tuple[str, ...] | None = None) -> object:
    """NAME=WEIGHT pairs, comma-separated (webchat=2,telegram=2), or a mapping; each weight a finite number above 0."""
    if isinstance(value, str):
        texts = list(filter(None, (part.strip() for part in value.split(","))))
        items = [(text, *text.partition("=")[::2]) for text in texts if "=" in text]
        if len(items) < len(texts):
            raise ValueError("expected NAME=WEIGHT with a weight above 0, "
                             f"got {next(t for t in texts if '=' not in t)!r}")
    elif isinstance(value, dict):
        items = [(f"{name}={raw}", name, raw) for name, raw in value.items()]
    else:
        return value
    weights: dict[str, float] = {}
    for text, raw_name, raw in items:
        name = str(raw_name).strip().lower()
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            weight = 0.0
        if not name or not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"expected NAME=WEIGHT with a weight above 0, got {text!r}")
        if known is not None and name not in known:
            raise ValueError(f"{name!r} is not one of {', '.join(known)}")
        weights[name] = weight
    return weights


class RoutingSettings(BaseSettings):
    model_config = _section("ROUTING_")

    channel_weights: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_CHANNEL_WEIGHTS)
    )
    """What a ticket of each channel adds to its agent's load (webchat=2,telegram=2); channels not named weigh 1."""
    priority_weights: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_WEIGHTS)
    )
    """Multiplies a ticket's channel weight by its priority (low=1,normal=1,high=1.5,critical=2)."""
    idle_offline_minutes: float = Field(60, ge=0)
    """An agent who made no API request for this long goes offline (0: never); agents never signed in stay as set."""
    return_on_offline: bool = True
    """An agent going offline hands back the tickets the router gave them that they have not touched."""

    _parse_channel_weights = field_validator("channel_weights", mode="before")(classmethod(lambda cls, v: _weights(v)))

    @field_validator("priority_weights", mode="before")
    @classmethod
    def _parse_priority_weights(cls, value: object) -> object:
        """Priorities not named keep their default weight."""
        parsed = _weights(value, tuple(DEFAULT_PRIORITY_WEIGHTS))
        return {**DEFAULT_PRIORITY_WEIGHTS, **parsed} if isinstance(parsed, dict) else parsed

    def weights(self) -> LoadWeights:
        return LoadWeights(channel=self.channel_weights, priority=self.priority_weights)


class SmsSettings(BaseSettings):
    model_config = _section("SMS_")

    gateway_url: str | None = None
    """HTTP SMS gateway (json: the endpoint; twilio: the API base); unset → SMS go to DATA_DIR/sms-log.jsonl."""
    profile: Literal["json", "twilio"] = "json"
    """The gateway's API shape: a generic JSON POST, or the Twilio-compatible Messages API."""
    token: str | None = None
    """json: bearer token sent with every SMS."""
    account_sid: str | None = None
    """twilio: the account SID (basic-auth user and part of the URL)."""
    auth_token: str | None = None
    """twilio: the auth token (basic-auth password; also checks the signature of delivery receipts)."""
    sender: str | None = None
    """The From number or sender id (twilio: a number, or a MessagingServiceSid MG…)."""
    fields: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """json: body field names where the gateway differs (to=phone,text=message,from=sender,reference=ref)."""
    id_field: str = "id"
    """json: the field of the gateway's answer holding its message id."""
    idempotency_header: str | None = None
    """Header carrying each SMS's dedupe key (default Idempotency-Key; twilio I-Twilio-Idempotency-Token); `none`: the
    gateway has none, so an SMS whose answer was lost is not resent."""
    timeout_seconds: float = Field(15, gt=0)
    """How long one request to the gateway may take."""
    max_segments: int = Field(2, ge=1, le=10)
    """Longest SMS, in segments (160 GSM-7 / 70 UCS-2 characters, 153 / 67 when concatenated); longer texts are cut."""
    status_token: str | None = None
    """json: the bearer token the gateway's delivery receipts must carry (POST /api/v1/notifier/sms/status)."""
    quiet_hours: str | None = None
    """Hours (22:00-08:00, the calendar's time zone) non-urgent SMS to agents wait out; escalations always go."""

    @field_validator("fields", mode="before")
    @classmethod
    def _parse_fields(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = ("to", "text", "from", "reference", "callback_url")
        mapping: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            ours, separator, theirs = item.partition("=")
            if not separator or ours.strip() not in names:
                raise ValueError(f"expected NAME=FIELD with NAME one of {', '.join(names)}, got {item!r}")
            mapping[ours.strip()] = theirs.strip()
        return mapping

    @field_validator("quiet_hours")
    @classmethod
    def _parse_quiet_hours(cls, value: str | None) -> str | None:
        if value:
            quiet_window(value)
        return value or None

    @model_validator(mode="after")
    def _complete(self) -> SmsSettings:
        if self.gateway_url and self.profile == "twilio" and not (self.account_sid and self.auth_token):
            raise ValueError("the twilio profile needs SWITCHBOARD_SMS_ACCOUNT_SID and SWITCHBOARD_SMS_AUTH_TOKEN")
        if self.gateway_url and not self.gateway_url.startswith(("http://", "https://")):
            raise ValueError(f"gateway_url must be an http:// or https:// URL, got {self.gateway_url!r}")
        return self

    def profile_spec(self) -> GatewayProfile:
        header = self.idempotency_header or (
            "I-Twilio-Idempotency-Token" if self.profile == "twilio" else "Idempotency-Key")
        return GatewayProfile(
            kind=self.profile, url=self.gateway_url or "", sender=self.sender, token=self.token,
            account_sid=self.account_sid, auth_token=self.auth_token, fields=self.fields, id_field=self.id_field,
            idempotency_header=None if header.lower() == "none" else header,
        )


class DispatchSettings(BaseSettings):
    model_config = _section("DISPATCH_")

    by: Literal["worker", "receiver"] = "worker"
    """Who completes receipts (routing, regulation plans, notices): `worker` processes, woken through Redis, or each
    process that took the receipt (`receiver`), in its own event loop; `serve` does both in one process."""
    batch: int = Field(200, ge=1, le=5000)
    """Owed tickets one dispatch transaction takes at most."""
    sweep_seconds: float = Field(2.0, gt=0)
    """How often each dispatcher looks for owed tickets nobody woke it for (a crashed process's, a lost wake)."""


class NotifierSettings(BaseSettings):
    model_config = _section("NOTIFIER_")

    max_attempts: int = Field(8, ge=1)
    """Tries per notification before a temporary failure (timeout, 5xx, 429, SMTP 4xx) becomes final."""
    first_retry_seconds: float = Field(30, gt=0)
    """Wait before the second try; doubled for each further one (±20 % jitter)."""
    max_retry_seconds: float = Field(3600, gt=0)
    """The longest wait between two tries."""
    stale_after_seconds: float = Field(120, gt=0)
    """A notification left `sending` this long (its worker died) is taken over by the sweeper."""
    assignment_emails: bool = True
    """Email an agent each ticket the router or a manager hands them (not ones they take themselves)."""
    worker_niceness: int = Field(0, ge=0, le=19)
    """`switchboard worker` lowers its CPU priority by this much (nice): on a shared machine a burst of deliveries
    then waits for the processes taking clients' messages instead of slowing them; 0 keeps it equal."""


class Settings(BaseSettings):
    """Everything a Switchboard process needs to know, in one object."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    data_dir: Path = Path("data")
    """Where the embedded database, embedded Redis and attachments live."""
    default_group: str = "Support"
    """Group that takes tickets no rule sends elsewhere, and agents added without --group."""
    phone_region: str | None = None
    """Country (ISO 3166 code, e.g. GB) assumed for phone numbers written without +country code."""
    regulations: Path | None = None
    """Regulations file; unset → the built-in default."""
    ami_url: str | None = None
    """Asterisk manager (AMI) to follow calls on, ami://USER:SECRET@HOST:5038 (amis:// over TLS): `switchboard pbx`
    keeps the session, and `serve` does when it is set."""
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    webchat: WebchatSettings = Field(default_factory=WebchatSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    notifier: NotifierSettings = Field(default_factory=NotifierSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    phone: PhoneSettings = Field(default_factory=PhoneSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)

    @field_validator("ami_url")
    @classmethod
    def _check_ami_url(cls, value: str | None) -> str | None:
        from channels.phone.ami import parse_ami_url

        if value and value.strip():
            parse_ami_url(value)
            return value.strip()
        return None

    @property
    def database_url(self) -> str:
        """The configured database, or the embedded SQLite file."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'switchboard.db').resolve()}"

    @model_validator(mode="after")
    def _regulations_valid(self) -> Settings:
        self.regulation_book()  # a wrong file stops every process at start, naming line, field and why
        return self

    def regulation_book(self) -> RegulationBook:
        """The regulations file, or the built-in default (with SWITCHBOARD_PHONE_CALLBACK_HOURS for callbacks)."""
        if self.regulations is None:
            return builtin_book(self.calendar.spec(), self.phone.callback_hours)
        return load_book(self.regulations, self.calendar.spec())

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database.url

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"

    @property
    def public_url(self) -> str:
        return (self.http.public_url or f"http://{self.http.host}:{self.http.port}").rstrip("/")
