"""The payload codec: AES-GCM per payload, key id in the metadata, rotation by key ring,
plain payloads passed through; and the codec server the Web UI calls."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload

from api.app import create_app
from api.settings import ApiSettings
from domain.money import Money
from security.codec import (
    COMPRESSION,
    ENCODING,
    KEY_ID,
    ZLIB,
    EncryptionCodec,
    SharedPydanticPayloadConverter,
    UnknownKeyError,
    converter_for,
)
from security.keys import KeyRing, KeyRingError, ensure_key_file
from tests.conftest import TEST_CONVERTER, TEST_KEY_RING

SECRET_NAME = "Globex UK Ltd"


def test_every_workflow_run_gets_the_one_payload_converter() -> None:
    """The SDK asks for a payload converter per workflow run: they are all one object (one
    TypeAdapter cache per process), and it converts models both ways like the SDK's own."""
    converters = [converter_for(ring)._new_payload_converter() for ring in (None, TEST_KEY_RING, TEST_KEY_RING)]
    inner = {id(getattr(c, "_inner_payload_converter", c)) for c in converters}
    assert SharedPydanticPayloadConverter() is SharedPydanticPayloadConverter()
    assert len(inner) == 1
    [payload] = converters[0].to_payloads([Money.of("120.50", "GBP")])
    assert converters[1].from_payloads([payload], [Money]) == [Money.of("120.50", "GBP")]


async def test_a_model_round_trips_and_the_stored_bytes_hold_no_plaintext() -> None:
    value = {"customer": SECRET_NAME, "amount": Money.of("120.50", "GBP")}
    [sealed] = await TEST_CONVERTER.encode([value])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"test-2"
    assert SECRET_NAME.encode() not in sealed.SerializeToString()
    [back] = await TEST_CONVERTER.decode([sealed], [dict])
    assert back["customer"] == SECRET_NAME


async def test_each_payload_gets_its_own_nonce() -> None:
    first, second = await TEST_CONVERTER.encode(["same", "same"])
    assert first.data != second.data


async def test_rotation_old_key_still_decrypts_and_new_payloads_use_the_current_key() -> None:
    old_ring = KeyRing("test-1", {"test-1": TEST_KEY_RING.keys["test-1"]})
    [sealed_by_old] = await converter_for(old_ring).encode(["written before rotation"])
    assert sealed_by_old.metadata[KEY_ID] == b"test-1"
    assert await TEST_CONVERTER.decode([sealed_by_old]) == ["written before rotation"]
    [sealed_by_new] = await TEST_CONVERTER.encode(["after"])
    with pytest.raises(UnknownKeyError, match="test-2"):
        await converter_for(old_ring).decode([sealed_by_new])


async def test_plain_payloads_decode_as_they_are() -> None:
    [plain] = await converter_for(None).encode([{"a": 1}])
    assert plain.metadata["encoding"] == b"json/plain"
    assert await TEST_CONVERTER.decode([plain], [dict]) == [{"a": 1}]


async def test_a_payload_relabelled_to_another_key_does_not_authenticate() -> None:
    [sealed] = await TEST_CONVERTER.encode(["x"])
    forged = Payload(metadata={"encoding": ENCODING, KEY_ID: b"test-1"}, data=sealed.data)
    with pytest.raises(UnknownKeyError, match="authenticate"):
        await EncryptionCodec(TEST_KEY_RING).decode([forged])


async def test_failure_messages_are_sealed_too() -> None:
    from temporalio.exceptions import ApplicationError

    failure = await _encoded_failure(ApplicationError(f"customer {SECRET_NAME} has no tax id", type="Bad"))
    assert SECRET_NAME.encode() not in failure.SerializeToString()
    error = await TEST_CONVERTER.decode_failure(failure)
    assert SECRET_NAME in str(error)


async def _encoded_failure(error: Exception):  # type: ignore[no-untyped-def]
    from temporalio.api.failure.v1 import Failure

    failure = Failure()
    await TEST_CONVERTER.encode_failure(error, failure)
    return failure


def test_key_ring_from_file_and_settings(tmp_path: Path) -> None:
    path = ensure_key_file(tmp_path / "keys.json")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = ensure_key_file(path)  # kept, never regenerated: stored histories stay readable
    assert again.read_text() == path.read_text()
    extra = base64.b64encode(bytes(32)).decode()
    settings = ApiSettings(codec_key_file=path, codec_keys={"k0": SecretStr(extra)})
    ring = KeyRing.from_settings(settings)
    assert ring is not None and ring.current == "k1" and set(ring.keys) == {"k0", "k1"}
    assert KeyRing.from_settings(ApiSettings()) is None


def test_bad_key_material_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing.from_settings(ApiSettings(codec_keys={"k": SecretStr(base64.b64encode(b"short").decode())}))
    with pytest.raises(KeyRingError, match="CURRENT_KEY"):
        KeyRing.from_settings(
            ApiSettings(
                codec_keys={
                    "a": SecretStr(base64.b64encode(bytes(32)).decode()),
                    "b": SecretStr(base64.b64encode(bytes(32)).decode()),
                }
            )
        )
    (tmp_path / "k.json").write_text(
        json.dumps({"current": "zz", "keys": {"k1": base64.b64encode(bytes(32)).decode()}})
    )
    with pytest.raises(KeyRingError, match="not in the key ring"):
        KeyRing.from_settings(ApiSettings(codec_key_file=tmp_path / "k.json"))


# ---- the codec server ------------------------------------------------------------------------

UI = "http://127.0.0.1:8233"


def codec_client(tmp_path: Path) -> httpx.AsyncClient:
    (tmp_path / "keys.json").write_text(TEST_KEY_RING.to_json())
    app = create_app(
        ApiSettings(profile="dev", static_tokens=True, codec_key_file=tmp_path / "keys.json"), temporal=object()
    )  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def as_json(payloads: list[Payload]) -> dict[str, object]:
    from google.protobuf.json_format import MessageToDict
    from temporalio.api.common.v1 import Payloads

    return MessageToDict(Payloads(payloads=payloads))


async def test_codec_server_decodes_for_a_principal_in_the_ui_protocol_shape(tmp_path: Path) -> None:
    [sealed] = await TEST_CONVERTER.encode([{"customer": SECRET_NAME}])
    async with codec_client(tmp_path) as http:
        response = await http.post(
            "/codec/decode", json=as_json([sealed]), headers={"Authorization": "Bearer dev-auditor", "Origin": UI}
        )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == UI
    assert response.headers["access-control-allow-credentials"] == "true"
    [item] = response.json()["payloads"]
    assert base64.b64decode(item["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(item["data"])) == {"customer": SECRET_NAME}


async def test_codec_server_encode_round_trips_and_the_auditor_may_not_encode(tmp_path: Path) -> None:
    [plain] = await converter_for(None).encode(["signal input"])
    async with codec_client(tmp_path) as http:
        encoded = await http.post(
            "/codec/encode", json=as_json([plain]), headers={"Authorization": "Bearer dev-finance"}
        )
        refused = await http.post(
            "/codec/encode", json=as_json([plain]), headers={"Authorization": "Bearer dev-auditor"}
        )
    assert encoded.status_code == 200
    [item] = encoded.json()["payloads"]
    assert base64.b64decode(item["metadata"]["encoding"]) == ENCODING
    sealed = Payload(
        metadata={k: base64.b64decode(v) for k, v in item["metadata"].items()}, data=base64.b64decode(item["data"])
    )
    assert await TEST_CONVERTER.decode([sealed]) == ["signal input"]
    assert refused.status_code == 403


async def test_codec_server_needs_a_caller_and_accepts_the_session_cookie(tmp_path: Path) -> None:
    [sealed] = await TEST_CONVERTER.encode(["x"])
    async with codec_client(tmp_path) as http:
        anonymous = await http.post("/codec/decode", json=as_json([sealed]))
        bad_session = await http.post("/codec/session", json={"token": "forged"})
        session = await http.post("/codec/session", json={"token": "dev-auditor"})
        with_cookie = await http.post("/codec/decode", json=as_json([sealed]))
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert bad_session.status_code == 401
    assert session.status_code == 204
    cookie = session.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/codec" in cookie
    assert with_cookie.status_code == 200


async def test_cors_preflight_admits_the_ui_origin_only(tmp_path: Path) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
    async with codec_client(tmp_path) as http:
        ui = await http.options("/codec/decode", headers={"Origin": UI, **preflight})
        other = await http.options("/codec/decode", headers={"Origin": "http://evil.example", **preflight})
    assert ui.status_code == 200 and ui.headers["access-control-allow-origin"] == UI
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


async def test_codec_server_without_keys_says_so(tmp_path: Path) -> None:
    app = create_app(ApiSettings(profile="dev", static_tokens=True), temporal=object())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.post(
            "/codec/decode", json={"payloads": []}, headers={"Authorization": "Bearer dev-auditor"}
        )
    assert response.status_code == 503


async def test_a_large_payload_is_compressed_before_it_is_sealed_and_round_trips() -> None:
    """A view of a year's engagement is mostly repeated JSON keys: sealed, it is a fraction
    of its plain size, and it decodes to the same value."""
    value = {
        "timeline": [
            {"stage": "IN_DELIVERY", "note": f"{SECRET_NAME}: period 2026-{m:02d} closed"} for m in range(1, 13)
        ]
        * 4
    }
    [sealed] = await TEST_CONVERTER.encode([value])
    [plain] = await converter_for(None).encode([value])
    assert sealed.metadata[COMPRESSION] == ZLIB
    assert len(sealed.data) < len(plain.data) / 4
    assert SECRET_NAME.encode() not in sealed.SerializeToString()
    assert await TEST_CONVERTER.decode([sealed], [dict]) == [value]
    [small] = await TEST_CONVERTER.encode(["short"])
    assert COMPRESSION not in small.metadata


async def test_a_compression_label_cannot_be_removed_or_added() -> None:
    [large] = await TEST_CONVERTER.encode(["x" * 4096])
    stripped = Payload(metadata={"encoding": ENCODING, KEY_ID: b"test-2"}, data=large.data)
    with pytest.raises(UnknownKeyError, match="authenticate"):
        await EncryptionCodec(TEST_KEY_RING).decode([stripped])
    [small] = await TEST_CONVERTER.encode(["x"])
    added = Payload(metadata={**small.metadata, COMPRESSION: ZLIB}, data=small.data)
    with pytest.raises(UnknownKeyError, match="authenticate"):
        await EncryptionCodec(TEST_KEY_RING).decode([added])
