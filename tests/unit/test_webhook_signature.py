"""Standard Webhooks verification: raw bytes, constant time, 5-minute window, rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from api.problems import ProblemError
from api.webhooks import verify

SECRET = b"0123456789abcdef0123456789abcdef"


def signed(body: bytes, event_id: str = "evt_1", ts: int = 1_800_000_000, secret: bytes = SECRET) -> dict[str, str]:
    mac = hmac.new(secret, f"{event_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def test_a_correct_signature_yields_the_event_id() -> None:
    body = b'{"type":"payment.received"}'
    assert verify(SECRET, signed(body), body, now=1_800_000_010) == "evt_1"


def test_tampered_body_is_refused() -> None:
    headers = signed(b'{"amount": 100}')
    with pytest.raises(ProblemError) as refused:
        verify(SECRET, headers, b'{"amount": 900}', now=1_800_000_000)
    assert refused.value.status == 401


def test_stale_timestamp_is_refused_even_when_signed() -> None:
    body = b"{}"
    with pytest.raises(ProblemError) as refused:
        verify(SECRET, signed(body), body, now=1_800_000_000 + 301)
    assert refused.value.title == "Stale webhook"


def test_any_of_several_signatures_may_match_during_key_rotation() -> None:
    body = b"{}"
    new = signed(body)
    old = signed(body, secret=b"an-old-secret-that-was-rotated-out")
    headers = {**new, "webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}"}
    assert verify(SECRET, headers, body, now=1_800_000_000) == "evt_1"


def test_missing_headers_are_refused() -> None:
    with pytest.raises(ProblemError):
        verify(SECRET, {"webhook-id": "x"}, b"{}", now=0)
