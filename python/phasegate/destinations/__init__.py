"""Destination registry: config type -> implementation."""

from __future__ import annotations

from phasegate.destinations.base import BatchResult, Capabilities, Destination, Record
from phasegate.destinations.file import FileDestination

REGISTRY: dict[str, type[Destination]] = {FileDestination.type: FileDestination}


def build_destination(config) -> Destination:
    return REGISTRY[config.type](config)


__all__ = ["BatchResult", "Capabilities", "Destination", "Record", "build_destination"]
