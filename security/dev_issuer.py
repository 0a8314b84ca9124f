"""The dev issuer of `make run`: an RSA key generated once into `.d2r/dev-issuer/`, the
discovery document and JWKS a real IdP would serve, and minting (`d2r token`). Dev only:
the production profile refuses to start with it configured."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEV_AUDIENCE = "d2r-api"
DEFAULT_TTL_SECONDS = 8 * 3600


def ensure_key(path: Path) -> Path:
    """Created once (owner-only) and reused, so tokens minted earlier stay valid."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return path


def _private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey), "the dev issuer key must be RSA"
    return key


def key_id(path: Path) -> str:
    public = (
        _private_key(path)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return hashlib.sha256(public).hexdigest()[:16]


def jwks(*paths: Path) -> dict[str, Any]:
    """The public keys (several during a rotation)."""
    keys = []
    for path in paths:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(_private_key(path).public_key(), as_dict=True)
        keys.append({**jwk, "kid": key_id(path), "use": "sig", "alg": "RS256"})
    return {"keys": keys}


def discovery(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": issuer.rstrip("/") + "/jwks.json",
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
    }


def mint(
    key_path: Path,
    issuer: str,
    *,
    subject: str,
    roles: list[str],
    entities: list[str],
    audience: str = DEV_AUDIENCE,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    extra: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "roles": roles,
        "d2r_entities": entities,
        **(extra or {}),
    }
    return jwt.encode(claims, _private_key(key_path), algorithm="RS256", headers={"kid": key_id(key_path)})
