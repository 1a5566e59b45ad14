"""Normalising and hashing the contact identifiers a record carries (its raw, unnormalised
`email` and `phone` payload fields). Engagement platforms get the normalised values; ad
platforms only ever get SHA-256 hashes of them."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any, NamedTuple

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class InvalidIdentity(ValueError):
    """A record's identifier cannot be used; the message names the field, never the value."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")


def normalize_email(raw: str) -> str:
    value = str(raw).strip()
    if (plain := _plain_address(value)) is not None:
        return plain
    checked = _validated_email(value)
    if checked is None:
        raise InvalidIdentity("email", "not a valid address")
    return checked


# Per identifier, email-validator costs ~45 µs: half the engine's time per record
# (BENCHMARKS.md, issue 4). Most addresses are plain ASCII, for which its result is known in
# advance: accepted, with the domain lowercased. _PLAIN matches only addresses email-validator
# (2.4, syntax only, its defaults) provably accepts unchanged but for case: a dot-atom local
# part of its ATEXT characters; two or more hostname labels of 1-63 letters, digits and inner
# hyphens; a top-level label ending in a letter. _plain_address adds the checks a regular
# expression cannot say. Anything else (unicode, quotes, IDN, trailing dots, "--" labels,
# special-use domains, long addresses) goes to email-validator itself, so rejections and
# their reasons are exactly its own. tests/test_destination_units.py compares both paths.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"
_PLAIN = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@(?:{_LABEL}\.)+{_TOP_LABEL}")
# A domain that is, or is under, one of its special-use names (localhost, test, ...).
_SPECIAL_USE = re.compile(rf"(?:^|\.)(?:{'|'.join(map(re.escape, SPECIAL_USE_DOMAIN_NAMES))})\Z")


def _plain_address(value: str) -> str | None:
    """The lowercased address if it is plain (see above), else None."""
    if len(value) > 254 or not _PLAIN.fullmatch(value):  # 254: its whole-address limit
        return None
    lowered = value.lower()  # ASCII only, as matched
    # The domain is within its 253-character limit, as the whole address is within 254.
    domain = lowered[lowered.index("@") + 1 :]
    # "--": punycode labels and its reserved "ab--" labels; its own checks decide those.
    if "--" in domain or _SPECIAL_USE.search(domain):
        return None
    return lowered


# The same addresses recur (a customer's attributes and events, resends): validate each once.
# Invalid ones are cached too, as None.
@lru_cache(maxsize=65_536)
def _validated_email(value: str) -> str | None:
    try:
        # syntax only: a DNS lookup per record would be slow and leak the domain list
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def normalize_phone(raw: str, default_region: str | None) -> str:
    """E.164 with the leading '+'; numbers without a country code are read in `default_region`."""
    e164, problem = _parsed_phone(str(raw).strip(), default_region)
    if problem:
        raise InvalidIdentity("phone", problem)
    return e164


@lru_cache(maxsize=65_536)  # ~30 µs per number; the same numbers recur, as emails do
def _parsed_phone(value: str, default_region: str | None) -> tuple[str, str | None]:
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return "", "not a phone number"
    if not phonenumbers.is_valid_number(number):
        return "", f"not a valid number (default region {default_region})"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def meta_phone(e164: str) -> str:
    """Meta's phone format: country code and number as digits, no '+'."""
    return e164.lstrip("+")


class Contact(NamedTuple):  # a NamedTuple: built per record, at a third of a dataclass's cost
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
