"""Validated settings for the synthetic data generator."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


def _today_utc() -> date:
    return datetime.now(timezone.utc).date()


class DirtyConfig(BaseModel):
    """Share of rows (or customers) carrying each realistic data fault; 0 disables a fault.

    Event-level rates apply per eligible event, customer-level rates per eligible customer
    (see ``truth.json`` -> ``fault_denominators`` for the exact denominators).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    duplicate_event_rate: float = Field(0.01, ge=0.0, le=1.0)
    late_event_rate: float = Field(0.02, ge=0.0, le=1.0)
    null_id_rate: float = Field(0.003, ge=0.0, le=1.0)
    malformed_email_rate: float = Field(0.01, ge=0.0, le=1.0)
    malformed_phone_rate: float = Field(0.01, ge=0.0, le=1.0)
    future_timestamp_rate: float = Field(0.001, ge=0.0, le=1.0)
    unknown_event_type_rate: float = Field(0.002, ge=0.0, le=1.0)
    shared_device_rate: float = Field(0.001, ge=0.0, le=1.0)
    junk_identifier_rate: float = Field(0.001, ge=0.0, le=1.0)
    # Valid but unnormalised addresses ("  John@Example.COM "): not a fault, a normalisation test.
    unnormalised_email_rate: float = Field(0.03, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _email_shares_fit(self) -> DirtyConfig:
        # One draw decides malformed / junk / unnormalised, so their shares must fit in [0, 1].
        total = self.malformed_email_rate + self.junk_identifier_rate + self.unnormalised_email_rate
        if total > 1.0:
            raise ValueError(
                "malformed_email_rate + junk_identifier_rate + unnormalised_email_rate "
                f"must be <= 1 (got {total:g})"
            )
        return self

    @classmethod
    def clean(cls) -> DirtyConfig:
        """A config that injects no faults at all."""
        return cls(**{name: 0.0 for name in cls.model_fields})


class GeneratorConfig(BaseModel):
    """What to generate: population size, window, BG/NBD parameters, faults, output folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customers: int = Field(10_000, ge=1, description="number of customers to simulate")
    days: int = Field(365, ge=1, description="length of the signup/observation window in days")
    seed: int = Field(42, ge=0, description="root seed; same config + seed => identical output")
    out: Path = Field(Path("data/demo"), description="output directory for the parquet files")
    end_date: date = Field(
        default_factory=_today_utc,
        description="last day (inclusive, UTC) of the window; defaults to today UTC",
    )
    chunk_size: int = Field(50_000, ge=1, description="customers simulated per chunk")
    # BG/NBD: purchase rate per day ~ Gamma(shape=r, rate=alpha); dropout after a purchase
    # with probability p ~ Beta(a, b).
    r: float = Field(0.75, gt=0.0)
    alpha: float = Field(10.0, gt=0.0)
    a: float = Field(0.8, gt=0.0)
    b: float = Field(2.5, gt=0.0)
    dirty: DirtyConfig = Field(default_factory=DirtyConfig)
    # The suppression list (not faults: the business's own opt-outs and erasure requests).
    suppression_share: float = Field(0.005, ge=0.0, le=1.0, description="customers on the suppression list")
    deletion_share: float = Field(0.001, ge=0.0, le=1.0, description="customers with a deletion request")
