"""Webhook signatures: the header's exact form (a receiver in any language can check it from
the docs), and every way verification refuses a delivery."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.core.webhook_signing import SignatureError, sign, signature, verify

SECRET = "whsec-test-secret"
BODY = '{"id":"d1","event":"case.opened","case":{"reason":"patient_request"}}'
T = 1_760_000_000


def test_the_header_is_stripe_shaped_over_timestamp_dot_body() -> None:
    header = sign(SECRET, T, BODY)
    expected = hmac.new(SECRET.encode(), f"{T}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert signature(SECRET, T, BODY.encode()) == expected  # bytes and text alike
    # Non-ASCII bodies are signed as their UTF-8 bytes.
    body = '{"category":"胸痛"}'
    assert sign(SECRET, T, body) == sign(SECRET, T, body.encode("utf-8"))


def test_verify_accepts_its_own_signature_within_the_window() -> None:
    header = sign(SECRET, T, BODY)
    assert verify(SECRET, header, BODY, now=T) == T
    assert verify(SECRET, header, BODY.encode(), now=T + 299) == T
    assert verify(SECRET, header, BODY, now=T - 299) == T  # a receiver's clock a little behind


@pytest.mark.parametrize(
    ("header", "body", "secret", "now", "why"),
    [
        (None, BODY, SECRET, T, "no X-MedChat-Signature"),
        ("", BODY, SECRET, T, "no X-MedChat-Signature"),
        ("v1=abc", BODY, SECRET, T, "no timestamp"),
        (f"t={T}", BODY, SECRET, T, "no v1"),
        (f"t=soon,v1={'0' * 64}", BODY, SECRET, T, "not a number"),
        (sign(SECRET, T, BODY), BODY + " ", SECRET, T, "no signature matches"),
        (sign(SECRET, T, BODY), BODY, "another-secret", T, "no signature matches"),
        (sign(SECRET, T, BODY), BODY, SECRET, T + 301, "tolerance"),  # a replay
        (sign(SECRET, T, BODY), BODY, SECRET, T - 301, "tolerance"),
        # The timestamp is signed: moving it forward breaks the signature.
        (sign(SECRET, T, BODY).replace(f"t={T}", f"t={T + 100}"), BODY, SECRET, T, "matches"),
        (f"t={T},v0={signature(SECRET, T, BODY)}", BODY, SECRET, T, "no v1"),
    ],
)
def test_verify_refuses(header: str | None, body: str, secret: str, now: int, why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        verify(secret, header, body, now=now)


def test_any_v1_entry_may_match_while_a_secret_is_replaced() -> None:
    old, new = signature("old-secret", T, BODY), signature(SECRET, T, BODY)
    header = f"t={T},v1={old},v1={new}"
    assert verify(SECRET, header, BODY, now=T) == T
    assert verify("old-secret", header, BODY, now=T) == T
    with pytest.raises(SignatureError):
        verify("third-secret", header, BODY, now=T)


def test_a_zero_tolerance_checks_the_signature_only() -> None:
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, tolerance_s=0, now=T + 10**6) == T
