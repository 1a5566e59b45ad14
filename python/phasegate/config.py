"""`phasegate.yml`: what the Python jobs do — which checks guard activation and which syncs
send what where. Validated with pydantic; every error names the field and the fix."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phasegate.destinations.configs import DestinationConfig
from phasegate.errors import ConfigError

DEFAULT_CONFIG_FILE = "phasegate.yml"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventNames(_Strict):
    entered: str = "phase_entered"
    exited: str = "phase_exited"


# The channel whose consent each destination type needs when `consent_channel` is `auto`.
DEFAULT_CONSENT_CHANNEL = {
    "braze": "email",
    "customerio": "email",
    "klaviyo": "email",
    "iterable": "email",
    "hubspot": "email",
    "google_audience": "ads",
    "meta_audience": "ads",
}


class FrequencyCaps(_Strict):
    """Phase-change actions per customer across every journey and every sync (one budget
    for Braze, ads, webhooks ...). When several journeys act on a customer at once, the
    journey with the lowest `priority` (dbt var) goes first; the rest are held back as capped."""

    per_day: int | None = Field(default=None, ge=1, description="Actions per customer per day.")
    per_week: int | None = Field(default=None, ge=1, description="Actions per customer in any 7 days.")


class SyncConfig(_Strict):
    name: str
    destination: DestinationConfig
    journeys: list[str] | None = Field(
        default=None, description="Journeys whose phases go out; all when omitted."
    )
    phases: list[str] | None = Field(
        default=None, description="Only customers currently in these phases; all when omitted."
    )
    fields: list[str] = Field(default_factory=list, description="Signal columns sent as attributes.")
    identifiers: list[Literal["email", "phone"]] = Field(
        default_factory=list,
        description="Customer contact identifiers included in each record (raw; each destination "
        "normalises, validates and, for ad platforms, hashes them).",
    )
    field_mapping: dict[str, str] = Field(
        default_factory=dict, description="Attribute name at the destination per field."
    )
    events: EventNames = Field(default_factory=EventNames)
    send_events: bool = True
    send_initial_entries: bool = Field(
        default=False,
        description="Send phase_entered for a customer's first placement (a first build "
        "places everyone; most teams do not want that as events).",
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    consent_channel: str | None = Field(
        default="auto",
        description="Consent channel a customer must have granted to be sent (email, sms, push, "
        "ads, or any of phasegate__consent_channels). `auto` picks by destination: email for "
        "Braze, Customer.io, Klaviyo, Iterable and HubSpot; ads for Google and Meta audiences; "
        "none for file, webhook, Segment and RudderStack (set one when they message customers).",
    )

    @model_validator(mode="after")
    def _resolve_consent_channel(self) -> SyncConfig:
        channel = self.consent_channel
        if channel == "auto":
            channel = DEFAULT_CONSENT_CHANNEL.get(self.destination.type)
        elif channel is not None and channel.lower() == "none":
            channel = None
        if channel is not None and not _NAME.match(channel):
            raise ValueError(
                f"consent_channel '{channel}' is not a channel name; use email, sms, push, ads, "
                "another of phasegate__consent_channels, or none"
            )
        self.consent_channel = channel
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use lowercase letters, digits and _ (starting with a letter)")
        return v

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        for f in v:
            if not _NAME.match(f):
                raise ValueError(f"'{f}' is not a column name; use a signal column such as orders_lifetime")
        return v


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"


def _valid_regex(v: str | None) -> str | None:
    if v is not None:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"'{v}' is not a valid regular expression ({exc}); fix the pattern") from None
    return v


class IdentifierFormatCheck(_Strict):
    """Format of one contact identifier in a sync's payload, checked on the value the
    destination would send (after its own normalisation)."""

    pattern: str
    max_invalid_share: float = Field(
        ge=0,
        le=1,
        description="Largest share of present (non-null) values that may fail the pattern "
        "before the sync is blocked; destinations reject those records one by one.",
    )
    tolerated_count: int = Field(
        default=10,
        ge=0,
        description="This many invalid values never block, so a small daily plan is not "
        "blocked by a handful of bad records.",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        return _valid_regex(v)


class EmailFormatCheck(IdentifierFormatCheck):
    pattern: str = EMAIL_PATTERN
    max_invalid_share: float = Field(default=0.05, ge=0, le=1)


class PhoneFormatCheck(IdentifierFormatCheck):
    pattern: str = E164_PATTERN
    # Phone numbers are captured free-form far more often than emails; a number without a
    # country code that the destination cannot place is rejected per record. Only a share
    # well above real-world dirt signals a broken pipeline.
    max_invalid_share: float = Field(default=0.4, ge=0, le=1)


class ColumnExpectations(_Strict):
    """Extra Great Expectations on one payload column."""

    not_null: bool = False
    unique: bool = False
    in_set: list[str | int | float | bool] | None = Field(default=None, min_length=1)
    between: list[float | None] | None = Field(
        default=None, description="[min, max]; either may be null for an open end."
    )
    regex: str | None = None
    mostly: float = Field(
        default=1.0, gt=0, le=1, description="Share of non-null rows that must meet each expectation."
    )
    syncs: list[str] | None = Field(
        default=None, description="Only these syncs; default every sync (the column must exist in each)."
    )

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return _valid_regex(v)

    @field_validator("between")
    @classmethod
    def _between(cls, v: list[float | None] | None) -> list[float | None] | None:
        if v is None:
            return v
        if len(v) != 2 or (v[0] is None and v[1] is None):
            raise ValueError("use [min, max] with at least one bound, e.g. [0, null]")
        if v[0] is not None and v[1] is not None and v[0] > v[1]:
            raise ValueError(f"min {v[0]} is above max {v[1]}; swap the bounds")
        return v


class PayloadChecks(_Strict):
    """Great Expectations suite on each sync's plan (what is about to be sent)."""

    enabled: bool = True
    min_rows: int = Field(
        default=0,
        ge=0,
        description="Block a sync whose plan has fewer records (0: an unchanged day sends nothing).",
    )
    email: EmailFormatCheck = Field(default_factory=EmailFormatCheck)
    phone: PhoneFormatCheck = Field(default_factory=PhoneFormatCheck)
    columns: dict[str, ColumnExpectations] = Field(
        default_factory=dict, description="Extra expectations per payload column."
    )

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, ColumnExpectations]) -> dict[str, ColumnExpectations]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(
                    f"'{name}' is not a payload column name; use a plan column such as "
                    "lifecycle_phase or a signal in the sync's fields"
                )
        return v


class FreshnessCheck(_Strict):
    enabled: bool = True
    max_age_hours: float = Field(
        default=48,
        gt=0,
        description="Block when the newest source event was received longer ago than this.",
    )
    relative_to: Literal["as_of", "now"] = Field(
        default="as_of",
        description="as_of: the end of the build's evaluation date (capped at now), so a "
        "backfill of past dates is judged by the data it had; now: the wall clock.",
    )


class TrailingBlastRadius(_Strict):
    enabled: bool = True
    multiplier: float = Field(
        default=3.0, gt=1, description="Block above this many times the trailing median."
    )
    window_days: int = Field(default=14, ge=1, description="Evaluation dates in the trailing median.")
    min_history_days: int = Field(
        default=7, ge=1, description="Applies only once this many earlier evaluation dates exist."
    )
    min_share: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Floor of the allowed value as a share of the journey's customers, so a "
        "near-zero median does not block a normal day.",
    )

    @model_validator(mode="after")
    def _history_fits_window(self) -> TrailingBlastRadius:
        if self.min_history_days > self.window_days:
            raise ValueError(
                f"min_history_days ({self.min_history_days}) exceeds window_days "
                f"({self.window_days}); lower min_history_days or widen the window"
            )
        return self


class ChecksConfig(_Strict):
    require_dbt_tests: bool = Field(
        default=True, description="Block unless the last dbt build passed every test."
    )
    max_changed_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Block when more than this share of a journey's customers change phase on one day.",
    )
    max_quarantined_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Block when more than this share of events is quarantined.",
    )
    great_expectations: bool = True
    freshness: FreshnessCheck = Field(default_factory=FreshnessCheck)
    trailing_blast_radius: TrailingBlastRadius = Field(default_factory=TrailingBlastRadius)
    payload: PayloadChecks = Field(default_factory=PayloadChecks)


class PhasegateConfig(_Strict):
    version: Literal[1] = 1
    project_dir: str = "."
    target: str | None = None
    source_schema: str | None = Field(
        default=None,
        description="Schema of the source tables; overrides phasegate__source_schema for every "
        "build and for `phasegate load`.",
    )
    ops_schema: str = Field(default="phasegate_ops", description="Schema for ledgers and audit.")
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    syncs: list[SyncConfig] = Field(default_factory=list)
    frequency_caps: FrequencyCaps = Field(default_factory=FrequencyCaps)
    dbt_vars: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra phasegate__* dbt vars for every build phasegate runs (e.g. "
        "phasegate__global_holdout_pct); dbt_project.yml stays the place for permanent ones.",
    )

    @field_validator("dbt_vars")
    @classmethod
    def _dbt_vars(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if not k.startswith("phasegate__")]
        if bad:
            raise ValueError(f"{bad}: only phasegate__* vars belong here; set others in dbt_project.yml")
        return v

    @model_validator(mode="after")
    def _unique_sync_names(self) -> PhasegateConfig:
        seen: set[str] = set()
        for s in self.syncs:
            if s.name in seen:
                raise ValueError(f"sync name '{s.name}' is used twice; sync names must be unique")
            seen.add(s.name)
        return self

    @model_validator(mode="after")
    def _payload_check_syncs_exist(self) -> PhasegateConfig:
        known = {s.name for s in self.syncs}
        for col, exp in self.checks.payload.columns.items():
            unknown = sorted(set(exp.syncs or []) - known)
            if unknown:
                raise ValueError(
                    f"checks.payload.columns.{col}.syncs: unknown sync(s) {unknown}; "
                    f"configured syncs: {sorted(known) or 'none'}"
                )
        return self

    def sync(self, name: str) -> SyncConfig:
        for s in self.syncs:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.syncs) or "none configured"
        raise ConfigError(f"no sync named '{name}' in the config; known syncs: {known}")

    def config_hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _format_errors(exc: ValidationError, path: Path, raw: dict) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s)"]
    for err in exc.errors():
        loc = list(err["loc"])
        where = []
        node = raw
        for part in loc:
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                node = node[part]
                label = node.get("name") if isinstance(node, dict) else None
                where.append(f"[{part}]" + (f" (sync '{label}')" if label else ""))
            else:
                where.append(f".{part}" if where else str(part))
                node = node.get(part, {}) if isinstance(node, dict) else {}
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check the spelling"
        lines.append(f"  - {''.join(where)}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None) -> PhasegateConfig:
    """The config at `path`, $PHASEGATE_CONFIG or ./phasegate.yml. Only the implicit default
    may be absent (then every default applies); a file that was asked for must exist."""
    explicit = path or os.environ.get("PHASEGATE_CONFIG")
    path = Path(explicit or DEFAULT_CONFIG_FILE)
    if not path.exists():
        if not explicit:
            return PhasegateConfig()
        raise ConfigError(f"config file {path} does not exist; pass --config or create it")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping (version, checks, syncs)")
    try:
        cfg = PhasegateConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, path, raw)) from None
    base = path.resolve().parent
    cfg.project_dir = str((base / cfg.project_dir).resolve())
    for s in cfg.syncs:
        s.destination = s.destination.resolved(base)
    return cfg
