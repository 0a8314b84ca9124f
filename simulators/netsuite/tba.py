"""Token-based authentication (OAuth 1.0a) as NetSuite checks it, with oauthlib's
signature-only endpoint: `Authorization: OAuth realm="<account id>", oauth_consumer_key,
oauth_token, oauth_signature_method="HMAC-SHA256", oauth_timestamp, oauth_nonce,
oauth_version="1.0", oauth_signature`. Refused (401 INVALID_LOGIN, the reason going to the
login audit trail as NetSuite's does): another realm, HMAC-SHA1 (NetSuite stopped taking
it), a timestamp more than 5 minutes off, a nonce seen before, unknown keys, a bad signature.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, RequestValidator, SignatureOnlyEndpoint
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

TIMESTAMP_LIFETIME = 300


class NonceGuard:
    """Nonces seen while their timestamp is still acceptable (older ones fail the
    timestamp check anyway), forgotten oldest first: constant work per request."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._order: deque[tuple[float, str]] = deque()

    def first_use(self, key: str) -> bool:
        now = time.time()
        while self._order and self._order[0][0] < now:
            self._seen.discard(self._order.popleft()[1])
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append((now + 2 * TIMESTAMP_LIFETIME, key))
        return True


class _Validator(RequestValidator):
    def __init__(self, tba: TokenBasedAuth) -> None:
        super().__init__()
        self.tba = tba

    enforce_ssl = False
    allowed_signature_methods = (SIGNATURE_HMAC_SHA256,)
    timestamp_lifetime = TIMESTAMP_LIFETIME

    @property
    def client_key_length(self) -> tuple[int, int]:
        return 20, 64

    @property
    def access_token_length(self) -> tuple[int, int]:
        return 20, 64

    @property
    def nonce_length(self) -> tuple[int, int]:
        return 6, 64

    @property
    def dummy_client(self) -> str:
        return "0" * 64

    @property
    def dummy_access_token(self) -> str:
        return "0" * 64

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return bool(client_key == self.tba.consumer_key)

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        return bool(token == self.tba.token_id)

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return self.tba.consumer_secret if client_key == self.tba.consumer_key else "dummy"

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return self.tba.token_secret if token == self.tba.token_id else "dummy"

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: Any,
        request_token: str | None = None,
        access_token: str | None = None,
    ) -> bool:
        if not self.tba.nonces.first_use(f"{client_key}:{access_token}:{timestamp}:{nonce}"):
            self.tba.last_reason = "InvalidNonce"
            return False
        return True


class TokenBasedAuth:
    def __init__(self, account_id: str, consumer_key: str, consumer_secret: str, token_id: str, token_secret: str):
        self.account_id = account_id
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.token_id = token_id
        self.token_secret = token_secret
        self.nonces = NonceGuard()
        self.last_reason = ""
        self._endpoint = SignatureOnlyEndpoint(_Validator(self))

    def refusal(self, url: str, method: str, authorization: str) -> str | None:
        """None when the request is signed right; else the login audit trail's reason."""
        params = dict(parse_authorization_header(authorization))
        if params.get("realm", "").upper() != self.account_id.upper():
            return "InvalidAccount"
        if params.get("oauth_signature_method") != SIGNATURE_HMAC_SHA256:
            return "InvalidSignatureMethod"
        try:
            if abs(time.time() - int(params.get("oauth_timestamp", "0"))) > TIMESTAMP_LIFETIME:
                return "InvalidTimestamp"
        except ValueError:
            return "InvalidTimestamp"
        if params.get("oauth_consumer_key") != self.consumer_key or params.get("oauth_token") != self.token_id:
            return "InvalidToken"
        self.last_reason = ""
        valid, _request = self._endpoint.validate_request(url, method, None, {"Authorization": authorization})
        if valid:
            return None
        return self.last_reason or "InvalidSignature"
