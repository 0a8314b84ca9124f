"""`make run` with TLS (D2R_DEV_TLS=1): a local certificate authority made with trustme
and a server certificate for the loopback names, under .d2r/tls and kept across runs, so
the simulators serve https as the vendors do and https-only clients work. Nothing here
is for production: the CA's key never leaves the dev machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class DevTls:
    ca: Path  # the CA certificate clients trust (D2R_VENDOR_CA_FILE, curl --cacert)
    server: Path  # the server's key and certificate chain, one PEM (--tls-cert and --tls-key)


def ensure_dev_tls(folder: Path) -> DevTls:
    """The local CA and server certificate, made on the first run."""
    tls = DevTls(ca=folder / "ca.pem", server=folder / "server.pem")
    if tls.ca.exists() and tls.server.exists():
        return tls
    import trustme  # a dev dependency, as `make run` installs .[dev]

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="d2r dev CA")
    ca.issue_cert(*NAMES).private_key_and_cert_chain_pem.write_to_path(str(tls.server))
    tls.server.chmod(0o600)
    ca.cert_pem.write_to_path(str(tls.ca))
    return tls
