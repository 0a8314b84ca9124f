"""Vendor-native logins for tests that talk to the simulators directly: the dev key pair
(simulators.devkeys, created by the session fixture in tests/conftest.py) signs them."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt

from connectors.netsuite.client import NetSuiteConfig
from simulators.devkeys import DEV_KEY_DIR, DEV_KEY_ID, DevKeys, ensure_dev_keys

NS_TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def dev_keys() -> DevKeys:
    return ensure_dev_keys(DEV_KEY_DIR)


def private_key_pem() -> str:
    return Path(dev_keys().private_key).read_text()


def netsuite_assertion(
    token_url: str, *, alg: str = "PS256", lifetime: int = 300, key: str | None = None, **overrides: Any
) -> str:
    """A client assertion as "The Request Token Structure" describes it."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "d2r-dev",
        "scope": "rest_webservices",
        "aud": token_url,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return jwt.encode(claims, key or private_key_pem(), algorithm=alg, headers={"kid": DEV_KEY_ID, "typ": "JWT"})


def netsuite_token_form(base_url: str, **overrides: Any) -> dict[str, str]:
    """The form of a NetSuite M2M token request against a simulator at `base_url`."""
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": netsuite_assertion(base_url.rstrip("/") + NS_TOKEN_PATH, **overrides),
    }


def netsuite_config(base_url: str) -> NetSuiteConfig:
    """The connector's config for a NetSuite simulator: the dev certificate's key signs."""
    return NetSuiteConfig(
        base_url=base_url, client_id="d2r-dev", certificate_id=DEV_KEY_ID, private_key=private_key_pem()
    )
