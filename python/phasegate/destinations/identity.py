"""Normalising and hashing the contact identifiers a record carries (its raw, unnormalised
`email` and `phone` payload fields). Engagement platforms get the normalised values; ad
platforms only ever get SHA-256 hashes of them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidIdentity(ValueError):
    """A record's identifier cannot be used; the message names the field, never the value."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")


def normalize_email(raw: str) -> str:
    value = str(raw).strip()
    try:
        # syntax only: a DNS lookup per record would be slow and leak the domain list
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidIdentity("email", "not a valid address") from None
    return checked.normalized.lower()


def normalize_phone(raw: str, default_region: str | None) -> str:
    """E.164 with the leading '+'; numbers without a country code are read in `default_region`."""
    try:
        number = phonenumbers.parse(str(raw).strip(), default_region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentity("phone", "not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentity("phone", f"not a valid number (default region {default_region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def meta_phone(e164: str) -> str:
    """Meta's phone format: country code and number as digits, no '+'."""
    return e164.lstrip("+")


@dataclass(frozen=True)
class Contact:
    email: str | None = None
    phone: str | None = None  # E.164


def contact_of(payload: dict[str, Any], default_region: str | None) -> Contact:
    """The record's normalised email and phone; any present but invalid one rejects the record,
    so a malformed identifier never reaches (or overwrites a good one at) the platform."""
    email, phone = payload.get("email"), payload.get("phone")
    return Contact(
        email=normalize_email(email) if _present(email) else None,
        phone=normalize_phone(phone, default_region) if _present(phone) else None,
    )


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def split_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without its contact fields: the attributes to set."""
    return {k: v for k, v in payload.items() if k not in ("email", "phone")}
