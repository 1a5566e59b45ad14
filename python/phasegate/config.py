"""`phasegate.yml`: what the Python jobs do — which checks guard activation and which syncs
send what where. Validated with pydantic; every error names the field and the fix."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Literal

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

    @model_validator(mode="after")
    def _unique_sync_names(self) -> PhasegateConfig:
        seen: set[str] = set()
        for s in self.syncs:
            if s.name in seen:
                raise ValueError(f"sync name '{s.name}' is used twice; sync names must be unique")
            seen.add(s.name)
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
