"""Loopback fakes of the platform APIs the destinations talk to, for the conformance suite."""
