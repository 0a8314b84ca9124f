"""AES-GCM payload encryption for everything d2r hands to Temporal, and the one builder of
the data converter every client, worker, replayer and test uses.

Each payload becomes `encoding: binary/encrypted` + `encryption-key-id: <id>` metadata and
`nonce || ciphertext` data; the key id is bound as associated data, so a payload cannot be
re-labelled to another key. Payloads without that encoding decode as they are, so
histories recorded before encryption still replay. A payload of 1 KiB or more is
zlib-compressed before it is sealed (`d2r-compression: zlib`, bound into the associated
data too): JSON views and carried state shrink 5-8 times, which keeps an engagement's
published view small in every visibility page that lists it (`contracts/memo.py`). Failure messages and stack traces are
moved into an encoded payload too (they can quote business data).
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Sequence
from typing import ClassVar, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from security.keys import CodecKeySettings, KeyRing

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
COMPRESSION = "d2r-compression"
ZLIB = b"zlib"
COMPRESS_FROM_BYTES = 1024  # below this, zlib's header costs more than it saves


class UnknownKeyError(ValueError):
    """A payload names a key this ring does not hold (rotated out too early, or foreign)."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._ring.current
        plain = payload.SerializeToString()
        metadata = {"encoding": ENCODING, KEY_ID: key_id.encode()}
        if len(plain) >= COMPRESS_FROM_BYTES:
            plain = zlib.compress(plain)
            metadata[COMPRESSION] = ZLIB
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, plain, _associated(key_id, metadata.get(COMPRESSION)))
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # plain (recorded before encryption, or never encoded)
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(f"payload encrypted with key {key_id!r}, which is not in the key ring")
        compression = payload.metadata.get(COMPRESSION)
        if compression not in (None, ZLIB):
            raise ValueError(f"payload compressed with {compression!r}, which this codec does not know")
        try:
            plain = cipher.decrypt(
                payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], _associated(key_id, compression)
            )
        except InvalidTag as error:
            raise UnknownKeyError(f"payload does not authenticate under key {key_id!r}") from error
        return Payload.FromString(zlib.decompress(plain) if compression else plain)


def _associated(key_id: str, compression: bytes | None) -> bytes:
    """The key id, and the compression when there is one: neither can be re-labelled."""
    return key_id.encode() + (b"+" + compression if compression else b"")


class SharedPydanticPayloadConverter(PydanticPayloadConverter):
    """The SDK builds a payload converter for every workflow run a worker holds, and each
    caches its own pydantic TypeAdapters: about 5 KiB per open engagement (README, "Figures").
    The converter holds nothing else (the cache is thread-safe), so one per process serves all."""

    _shared: ClassVar[SharedPydanticPayloadConverter | None] = None

    def __new__(cls) -> Self:
        shared = cls._shared
        if not isinstance(shared, cls):
            shared = super().__new__(cls)
            PydanticPayloadConverter.__init__(shared)
            cls._shared = shared
        return shared

    def __init__(self) -> None:
        """Built once, in `__new__`: every later call hands back the same converter."""


def converter_for(ring: KeyRing | None) -> DataConverter:
    """Pydantic payloads, encrypted with `ring` (plain when there is no ring: dev only,
    refused by the production profile)."""
    plain = dataclasses.replace(pydantic_data_converter, payload_converter_class=SharedPydanticPayloadConverter)
    if ring is None:
        return plain
    return dataclasses.replace(
        plain,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: CodecKeySettings) -> DataConverter:
    """The data converter of a process, from its settings (the key ring they name)."""
    return converter_for(KeyRing.from_settings(settings))
