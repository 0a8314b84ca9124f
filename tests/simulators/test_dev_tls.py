"""`make run` with D2R_DEV_TLS=1: the local CA and server certificate the launcher makes,
the four simulators started with the launcher's own TLS flags answering https, and
d2r's connectors reaching them through the `vendor_ca_file` setting (a client that does
not trust the CA is refused)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.endpoints import trust_ca_file
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from tests.simulators.procs import free_port, start, stop
from workers import devstack
from workers.devtls import ensure_dev_tls
from workers.settings import WorkerSettings

SIMULATORS = ("simulators.salesforce", "simulators.netsuite", "simulators.dynamics", "simulators.kantata")


@pytest.fixture(scope="module")
def https_sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("dev-tls")
    tls = ensure_dev_tls(tmp / "tls")
    assert ensure_dev_tls(tmp / "tls") == tls  # the second run keeps the CA
    ports = {m: free_port() for m in SIMULATORS}
    procs = [
        start(m, port, tmp / f"{m}.sqlite", "--seed", "demo", *devstack.tls_flags(tls)) for m, port in ports.items()
    ]
    try:
        yield tls.ca, ports
    finally:
        for proc in procs:
            stop(proc)


def test_every_simulator_answers_https_to_a_client_trusting_the_local_ca(
    https_sims: tuple[Path, dict[str, int]],
) -> None:
    ca, ports = https_sims
    trusted = ssl.create_default_context(cafile=str(ca))
    for module, port in ports.items():
        r = httpx.get(f"https://127.0.0.1:{port}/__admin/health", verify=trusted)
        assert r.status_code == 200, (module, r.text)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{ports['simulators.salesforce']}/__admin/health")  # public CAs only


async def test_the_connectors_trust_the_ca_named_by_the_setting(
    https_sims: tuple[Path, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, ports = https_sims
    monkeypatch.setenv("D2R_VENDOR_CA_FILE", str(ca))
    settings = WorkerSettings()
    assert settings.vendor_ca_file == ca
    base = f"https://127.0.0.1:{ports['simulators.salesforce']}"
    trust_ca_file(str(settings.vendor_ca_file))
    try:
        sf = SalesforceClient(SalesforceConfig(base_url=base, client_id="d2r-dev", client_secret="d2r-dev-secret"))
        rows = await sf.query_all("SELECT Id FROM Account LIMIT 2")  # the token and the query, over https
        await sf.aclose()
        assert len(rows) == 2
    finally:
        trust_ca_file(None)
    untrusting = SalesforceClient(SalesforceConfig(base_url=base, client_id="d2r-dev", client_secret="d2r-dev-secret"))
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        await untrusting.query_all("SELECT Id FROM Account LIMIT 1")
    await untrusting.aclose()


def test_the_launcher_points_the_connectors_at_https() -> None:
    erps = devstack.two_erps("https")
    assert '"url": "https://127.0.0.1:' in erps["D2R_ERP_INSTANCES"]
    assert devstack.tls_flags(None) == [] and devstack.tls_note(None) == ""
