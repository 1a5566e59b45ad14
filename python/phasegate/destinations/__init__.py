"""Destination registry: config type -> implementation."""

from __future__ import annotations

# configs first: it imports the platform modules, which import DestinationSettings back from it
from phasegate.destinations import configs
from phasegate.destinations.base import DELETE_UNSUPPORTED, BatchResult, Capabilities, Destination, Record
from phasegate.destinations.braze import BrazeDestination
from phasegate.destinations.customerio import CustomerIoDestination
from phasegate.destinations.file import FileDestination
from phasegate.destinations.google_audience import GoogleAudienceDestination
from phasegate.destinations.hubspot import HubSpotDestination
from phasegate.destinations.iterable import IterableDestination
from phasegate.destinations.klaviyo import KlaviyoDestination
from phasegate.destinations.meta_audience import MetaAudienceDestination
from phasegate.destinations.segment import RudderStackDestination, SegmentDestination
from phasegate.destinations.webhook import WebhookDestination

REGISTRY: dict[str, type[Destination]] = {
    cls.type: cls
    for cls in (
        FileDestination,
        BrazeDestination,
        CustomerIoDestination,
        KlaviyoDestination,
        IterableDestination,
        HubSpotDestination,
        SegmentDestination,
        RudderStackDestination,
        GoogleAudienceDestination,
        MetaAudienceDestination,
        WebhookDestination,
    )
}


def build_destination(config) -> Destination:
    return REGISTRY[config.type](config)


DestinationConfig = configs.DestinationConfig

__all__ = [
    "DELETE_UNSUPPORTED",
    "BatchResult",
    "DestinationConfig",
    "Capabilities",
    "Destination",
    "Record",
    "build_destination",
]
