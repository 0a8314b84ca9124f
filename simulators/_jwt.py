"""Verifying the signed JWTs vendors accept at their token endpoints (a NetSuite client
assertion, a Salesforce JWT bearer assertion) against a registered certificate."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

LEEWAY_S = 5  # clock skew tolerated between the client and the vendor


class AssertionRefused(Exception):
    """Why an assertion is refused, in the vendor's audit words (e.g. InvalidSignature)."""


def load_public_key(path: str | Path) -> PublicKeyTypes:
    """The public key of a PEM certificate (what the vendor's setup page uploads) or key."""
    data = Path(path).read_bytes()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


class ReplayGuard:
    """Assertions already exchanged, kept until they expire: one JWT buys one token."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def check_and_remember(self, assertion: str, exp: float) -> None:
        now = time.time()
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        key = hashlib.sha256(assertion.encode()).hexdigest()
        if self._seen.get(key, 0) > now:
            raise AssertionRefused("ReplayedAssertion: this JWT was already used to get a token")
        self._seen[key] = exp


def verify(
    assertion: str,
    key: PublicKeyTypes | None,
    *,
    algorithms: tuple[str, ...],
    audiences: list[str],
    issuer: str,
    require: tuple[str, ...] = ("exp", "iat", "iss", "aud"),
    kid: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a valid assertion; AssertionRefused otherwise."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError as e:
        raise AssertionRefused(f"MalformedAssertion: {e}") from None
    if header.get("alg") not in algorithms:
        raise AssertionRefused(f"UnsupportedAlgorithm: {header.get('alg')!r} (accepted: {', '.join(algorithms)})")
    if kid is not None and header.get("kid") != kid:
        raise AssertionRefused(f"UnknownCertificate: kid {header.get('kid')!r} is not mapped to this integration")
    if key is None:
        raise AssertionRefused("NoCertificate: no certificate is registered for this integration")
    try:
        # exp/iat are checked below: clients send them as numbers or numeric strings
        # (simple-salesforce writes f"{exp:.0f}"), which the vendors accept and PyJWT does not
        claims = jwt.decode(
            assertion,
            key,  # type: ignore[arg-type]
            algorithms=list(algorithms),
            audience=audiences,
            issuer=issuer,
            options={"require": list(require), "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidSignatureError:
        raise AssertionRefused("InvalidSignature: the signature does not match the registered certificate") from None
    except jwt.InvalidAudienceError:
        raise AssertionRefused(f"InvalidAudience: aud must be one of {audiences}") from None
    except jwt.InvalidIssuerError:
        raise AssertionRefused("InvalidIntegration: iss is not this integration's client id") from None
    except jwt.PyJWTError as e:
        raise AssertionRefused(f"InvalidAssertion: {e}") from None
    now = time.time()
    for name in ("exp", "iat", "nbf"):
        if name in claims:
            try:
                claims[name] = float(claims[name])
            except (TypeError, ValueError):
                raise AssertionRefused(f"InvalidAssertion: {name} is not a number") from None
    if claims.get("exp", now + 1) <= now - LEEWAY_S:
        raise AssertionRefused("ExpiredAssertion: exp is in the past")
    if max(claims.get("iat", 0), claims.get("nbf", 0)) > now + LEEWAY_S:
        raise AssertionRefused("AssertionNotYetValid: iat/nbf is in the future")
    return header, claims
