"""Pydantic settings of every destination type, as one discriminated union on `type`.
Each destination module defines its own settings class; add new ones to the union."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class DestinationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def resolved(self, base: Path) -> DestinationSettings:
        """Settings with relative paths made absolute against the config file's folder."""
        return self


class FileDestinationConfig(DestinationSettings):
    type: Literal["file"]
    path: str = Field(description="Directory the batches are written to.")
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"

    def resolved(self, base: Path) -> FileDestinationConfig:
        return self.model_copy(update={"path": str((base / self.path).resolve())})


DestinationConfig = Annotated[FileDestinationConfig, Field(discriminator="type")]
