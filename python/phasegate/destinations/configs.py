"""Pydantic settings of every destination type, as one discriminated union on `type`.
Each destination module defines its own settings class; add new ones to the union."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class DestinationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Batches sent at once; the destination type's default when omitted. The "
        "client-side rate limiter still bounds requests per second. A crash resends at most "
        "this many batches (with the same record ids).",
    )

    def resolved(self, base: Path) -> DestinationSettings:
        """Settings with relative paths made absolute against the config file's folder."""
        return self


class FileDestinationConfig(DestinationSettings):
    type: Literal["file"]
    path: str = Field(description="Directory the batches are written to.")
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"

    def resolved(self, base: Path) -> FileDestinationConfig:
        return self.model_copy(update={"path": str((base / self.path).resolve())})


# Platform settings live beside their destinations, which import DestinationSettings from here;
# by now it is defined, so these imports complete.
from phasegate.destinations.braze import BrazeSettings  # noqa: E402
from phasegate.destinations.customerio import CustomerIoSettings  # noqa: E402
from phasegate.destinations.google_audience import GoogleAudienceSettings  # noqa: E402
from phasegate.destinations.hubspot import HubSpotSettings  # noqa: E402
from phasegate.destinations.iterable import IterableSettings  # noqa: E402
from phasegate.destinations.klaviyo import KlaviyoSettings  # noqa: E402
from phasegate.destinations.meta_audience import MetaAudienceSettings  # noqa: E402
from phasegate.destinations.segment import RudderStackSettings, SegmentSettings  # noqa: E402
from phasegate.destinations.webhook import WebhookSettings  # noqa: E402

DestinationConfig = Annotated[
    FileDestinationConfig
    | BrazeSettings
    | CustomerIoSettings
    | KlaviyoSettings
    | IterableSettings
    | HubSpotSettings
    | SegmentSettings
    | RudderStackSettings
    | GoogleAudienceSettings
    | MetaAudienceSettings
    | WebhookSettings,
    Field(discriminator="type"),
]
