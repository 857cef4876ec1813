"""Webhook signatures, as Stripe signs its events: the receiver proves that a delivery came
from this platform, unchanged, and recently.

The header `X-MedChat-Signature: t=<unix seconds>,v1=<hex>` carries the time of signing and
HMAC-SHA256(secret, f"{t}.{body}") over the exact bytes of the body. Signing the time with
the body lets a receiver refuse a replayed delivery: one signed longer ago than its tolerance
window. Several `v1=` entries may appear (one per secret while a secret is being replaced); a
match with any of them verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-MedChat-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300  # Stripe's default: five minutes either way


class SignatureError(ValueError):
    """The signature header is missing, malformed, too old, or matches no secret."""


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.{body}"` under `secret`."""
    signed = f"{timestamp}.".encode() + _bytes(body)
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes | str) -> str:
    """The value of the X-MedChat-Signature header for `body` sent at `timestamp`."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes | str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a delivery's header against its raw body; returns the signed timestamp.

    Raises SignatureError when the header is missing or malformed, when it was signed more
    than `tolerance_s` from `now` (a replay, or a clock far off), or when no `v1` signature
    matches (compared in constant time)."""
    if not header:
        raise SignatureError(f"no {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the timestamp is not a number") from None
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None:
        raise SignatureError("the header has no timestamp (t=)")
    if not candidates:
        raise SignatureError(f"the header has no {SCHEME} signature")
    current = time.time() if now is None else now
    if tolerance_s > 0 and abs(current - timestamp) > tolerance_s:
        raise SignatureError("the signature is outside the tolerance window")
    expected = signature(secret, timestamp, body)
    # Every candidate is compared, so the time taken does not say which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureError("no signature matches the body and the secret")
    return timestamp
