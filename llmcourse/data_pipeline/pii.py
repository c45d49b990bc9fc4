"""Stage 4, PII scrubbing: e-mail addresses, phone numbers and IPv4 addresses become tags.

:func:`scrub_pii` replaces them by ``<EMAIL>``, ``<PHONE>`` and ``<IP>`` (:data:`PII_TAGS`) with
regular expressions, and counts what it replaced.

This module imports nothing else from :mod:`llmcourse.data_pipeline`.
"""

from __future__ import annotations

import re

from llmcourse.checks import check_str

__all__ = ["PII_TAGS", "scrub_pii"]

#: What each kind of PII is replaced with.
PII_TAGS: dict[str, str] = {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP>"}

# local@domain.tld: the local part may hold letters, digits and . _ % + -; the domain is one or more
# labels followed by a TLD of 2+ letters (so "user@localhost" is not matched). Not preceded by a
# character that could continue the local part.
_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,}(?![\w-])"
)
# IPv4: four octets 0-255 without leading zeros, not part of a longer dotted run of numbers
# ("1.2.3.4.5" is not an address) and not glued to digits ("256.1.1.1" does not match "56.1.1.1").
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IP_RE = re.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d)")
# Phones: need separators, so plain numbers, years and dates never match.
#   North American: (555) 123-4567 | 555-123-4567 | 555.123.4567 | 555 123 4567, with an optional
#   leading "+1 " / "1-"; the two separators must be the same character.
#   International: "+" country code then 2 to 5 groups of digits separated by one space, "-" or ".",
#   8 to 15 digits in all (E.164's limit is 15): "+44 20 7946 0958", "+33 1 23 45 67 89".
_PHONE_RE = re.compile(
    r"(?<![\w+.-])(?:"
    r"(?:\+?1[ .-])?(?:\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}([ .-])\d{3}\1\d{4})"
    r"|\+\d{1,3}(?:[ .-]\d{1,4}){2,5}"
    r")(?![\w]|[.-]\d)"
)


def _phone_sub(match: re.Match) -> str:
    text = match.group(0)
    if text.startswith("+") and not text.startswith("+1 ") and not 8 <= sum(c.isdigit() for c in text) <= 15:
        return text
    return PII_TAGS["phone"]


def scrub_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace e-mail addresses, phone numbers and IPv4 addresses by ``<EMAIL>``, ``<PHONE>``, ``<IP>``.

    Regular expressions, applied in that order (e-mails first, because an address may hold digits):

    - e-mail: ``local@domain.tld``; the local part may contain ``. _ % + -`` (``first.last+tag``), the
      domain any number of subdomains, the top-level domain 2+ letters. "e.g." and "a.m." have no
      ``@``; "user@localhost" has no TLD and is left alone.
    - IPv4: four octets 0-255 (no leading zeros); "256.1.1.1" and "1.2.3.4.5" are left alone.
    - phone: ``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``, ``555 123 4567`` (optionally with
      ``+1``), and international ``+CC`` numbers in 3-6 groups with 8-15 digits
      (``+44 20 7946 0958``). A number without separators ("5551234567"), years, dates
      ("2024-01-05") and act.scene.line references ("3.1.45") are not phones.

    A regex scrubber trades recall for precision: it misses numbers written in words or in formats
    not listed, and would replace an unusual non-phone number with the same shape.

    Returns:
        ``(scrubbed, counts)`` with ``counts = {"email": n, "phone": n, "ip": n}``.

        >>> scrub_pii("Mail anne.h+plays@globe.co.uk or call (555) 123-4567 from 10.0.0.1, e.g. today")
        ('Mail <EMAIL> or call <PHONE> from <IP>, e.g. today', {'email': 1, 'phone': 1, 'ip': 1})
    """
    text = check_str("text", text)
    text, n_email = _EMAIL_RE.subn(PII_TAGS["email"], text)
    text, n_ip = _IP_RE.subn(PII_TAGS["ip"], text)
    n_phone = 0

    def sub(m: re.Match) -> str:
        nonlocal n_phone
        out = _phone_sub(m)
        n_phone += out != m.group(0)
        return out

    text = _PHONE_RE.sub(sub, text)
    return text, {"email": n_email, "phone": n_phone, "ip": n_ip}

