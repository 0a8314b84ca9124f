"""What a non-dev profile refuses at start-up: dev material that would make a deployment
look secure while it is not. Every finding is listed in one message, so one restart fixes
them all. The API and every worker process run these checks (api/app.py, workers'
Temporal client)."""

from __future__ import annotations

import base64
from typing import Any

DEV_PROFILE = "dev"
# The simulators' signing secret and OAuth client secret, printed in the README.
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"d2r-dev-webhook-secret-0123456789").decode()
DEV_CLIENT_SECRET = "d2r-dev-secret"


class InsecureConfigurationError(RuntimeError):
    """A non-dev profile was started with dev material; the message says what to change."""


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    reveal = getattr(value, "get_secret_value", None)
    return str(reveal() if reveal else value)


def codec_findings(settings: Any) -> list[str]:
    if getattr(settings, "codec_key_file", None) is None and not getattr(settings, "codec_keys", None):
        return ["no payload codec key (set D2R_CODEC_KEY_FILE or D2R_CODEC_KEYS): histories would hold plaintext"]
    return []


def vendor_findings(settings: Any) -> list[str]:
    found = []
    endpoints = {
        "salesforce": getattr(settings, "salesforce", None),
        **(getattr(settings, "erp_instances", None) or {}),
    }
    for name, endpoint in endpoints.items():
        if endpoint is not None and _secret(getattr(endpoint, "client_secret", None)) == DEV_CLIENT_SECRET:
            found.append(f"the {name} endpoint uses the simulators' dev client secret")
    return found


def api_findings(settings: Any) -> list[str]:
    found = codec_findings(settings) + vendor_findings(settings)
    if getattr(settings, "static_tokens", False):
        found.append("static tokens are on (D2R_STATIC_TOKENS): they are a dev option")
    if not getattr(settings, "oidc_issuer", None):
        found.append("no token issuer (set D2R_OIDC_ISSUER to your IdP)")
    if not getattr(settings, "oidc_audience", None):
        found.append("no token audience (set D2R_OIDC_AUDIENCE)")
    if getattr(settings, "dev_issuer_key_file", None) is not None:
        found.append("the dev issuer is configured (D2R_DEV_ISSUER_KEY_FILE)")
    secrets = [getattr(settings, "webhook_secret", None), *(getattr(settings, "webhook_secrets", None) or {}).values()]
    if DEV_WEBHOOK_SECRET in [_secret(s) for s in secrets]:
        found.append("a webhook secret is the simulators' dev secret")
    if any("*" in origin for origin in getattr(settings, "cors_origins", [])):
        found.append("CORS allows a wildcard origin (list the Temporal UI's origin in D2R_CORS_ORIGINS)")
    return found


def refuse_dev_material(settings: Any, findings: list[str]) -> None:
    profile = getattr(settings, "profile", DEV_PROFILE)
    if profile != DEV_PROFILE and findings:
        raise InsecureConfigurationError(
            f"profile {profile!r} refuses to start:\n" + "\n".join(f"  - {finding}" for finding in findings)
        )
