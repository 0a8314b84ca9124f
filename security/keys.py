"""The payload key ring: the current key encrypts, every listed key decrypts (rotation).

Keys come from settings (`D2R_CODEC_KEYS='{"k1": "<base64 32 bytes>"}'`,
`D2R_CODEC_CURRENT_KEY=k1`) and/or a JSON key file (`D2R_CODEC_KEY_FILE`, shape
`{"current": "k2", "keys": {"k1": "...", "k2": "..."}}`). Rotating = add a key, make it
current, keep the old one until no running history needs it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

KEY_BYTES = 32  # AES-256


class KeyRingError(ValueError):
    """The key configuration cannot encrypt safely (named so start-up can say why)."""


class CodecKeySettings(Protocol):
    codec_key_file: Path | None
    codec_keys: dict[str, SecretStr]
    codec_current_key: str | None


@dataclass(frozen=True)
class KeyRing:
    current: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyRingError(f"the current codec key {self.current!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"codec key {key_id!r} must be {KEY_BYTES} bytes (base64), not {len(key)}")

    @classmethod
    def from_settings(cls, settings: CodecKeySettings) -> KeyRing | None:
        """None when no key is configured at all (the caller decides whether that is allowed)."""
        keys: dict[str, bytes] = {}
        current = settings.codec_current_key
        if settings.codec_key_file is not None:
            document = json.loads(Path(settings.codec_key_file).read_text(encoding="utf-8"))
            keys.update({k: _decode(k, v) for k, v in document.get("keys", {}).items()})
            current = current or document.get("current")
        keys.update({k: _decode(k, v.get_secret_value()) for k, v in settings.codec_keys.items()})
        if not keys:
            return None
        if current is None and len(keys) == 1:
            current = next(iter(keys))
        if current is None:
            raise KeyRingError("several codec keys are configured: set D2R_CODEC_CURRENT_KEY to the one that encrypts")
        return cls(current, keys)

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls(key_id, {key_id: secrets.token_bytes(KEY_BYTES)})

    def to_json(self) -> str:
        return json.dumps(
            {"current": self.current, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()}},
            indent=2,
        )


def _decode(key_id: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as error:
        raise KeyRingError(f"codec key {key_id!r} is not valid base64") from error


def ensure_key_file(path: Path) -> Path:
    """The dev launcher's key file: created once (owner-only), reused by every later run so
    stored histories stay readable."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(KeyRing.generate().to_json())
    return path
