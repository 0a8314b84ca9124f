"""Dev key pair for the vendors' certificate-signed logins (NetSuite's OAuth 2.0 client
credentials with a JWT client assertion, Salesforce's JWT bearer flow).

`make run` (workers/devstack.py) and the test suite call `ensure_dev_keys`: a private key
for the connectors and a self-signed certificate the simulators verify against, the way
a real integration registers its certificate with the vendor. Never for production.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

DEV_KEY_DIR = Path(".d2r/keys")
DEV_KEY_ID = "d2r-dev-cert"  # NetSuite: the Certificate ID of the M2M mapping (the JWT's `kid`)


@dataclass(frozen=True)
class DevKeys:
    private_key: Path  # PKCS#8 PEM, for the connectors
    certificate: Path  # X.509 PEM, registered with the simulators
    key_id: str = DEV_KEY_ID


def ensure_dev_keys(directory: Path = DEV_KEY_DIR) -> DevKeys:
    """Create the key pair once (RSA 2048, certificate valid two years); reuse it after."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = DevKeys(directory / "jwt-dev.key", directory / "jwt-dev.crt")
    with open(directory / ".lock", "w") as lock:  # two processes starting at once make one pair
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (keys.private_key.exists() and keys.certificate.exists()):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d2r dev integration")])
            now = dt.datetime.now(dt.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=730))
                .sign(key, hashes.SHA256())
            )
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _write(keys.private_key, pem, 0o600)
            _write(keys.certificate, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return keys


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
