"""simple-salesforce 1.12 (a widely used third-party client) drives the Salesforce
simulator over https, through both of its server-to-server logins: client credentials
(it sends them as HTTP Basic) and the JWT bearer flow (it writes `exp` as a string).

The simulator serves TLS with a certificate from a throwaway local CA (trustme); the
requests session trusts that CA and sends the login host (`*.salesforce.com`) to the
simulator's port, as DNS would send it to Salesforce."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import trustme
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from tests.simulators.procs import free_port, start, stop
from tests.vendor_auth import dev_keys


class LoginHost(HTTPAdapter):
    """Sends https://<anything>.salesforce.com to the simulator (the login endpoint) and
    trusts only the local CA (whatever REQUESTS_CA_BUNDLE the environment sets)."""

    def __init__(self, base: str, ca: str) -> None:
        super().__init__()
        self.base = base
        self.ca = ca

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        request.url = re.sub(r"^https://[^/]+\.salesforce\.com", self.base, request.url or "")
        return super().send(request, **{**kwargs, "verify": self.ca})


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, requests.Session]]:
    tmp = tmp_path_factory.mktemp("sf-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    port = free_port()
    pem = str(tmp / "server.pem")
    proc = start(
        "simulators.salesforce", port, tmp / "sf.sqlite", "--seed", "demo", "--page-size", "5",
        "--tls-cert", pem, "--tls-key", pem,
    )  # fmt: skip
    base = f"https://127.0.0.1:{port}"
    session = requests.Session()
    session.mount("https://", LoginHost(base, str(tmp / "ca.pem")))
    try:
        yield base, session
    finally:
        session.close()
        stop(proc)


def client_credentials(session: requests.Session) -> Salesforce:
    return Salesforce(consumer_key="d2r-dev", consumer_secret="d2r-dev-secret", domain="d2r-dev.my", session=session)


def test_client_credentials_login_and_soql(simulator: tuple[str, requests.Session]) -> None:
    base, session = simulator
    sf = client_credentials(session)
    assert sf.sf_instance == base.removeprefix("https://")  # instance_url is https
    rows = sf.query("SELECT Id, Name, Account.Name FROM Opportunity WHERE StageName = 'Closed Won' ORDER BY Id")
    assert rows["totalSize"] >= 4
    first = rows["records"][0]
    assert first["Id"] == "006Dd0000000001IAA" and first["Account"]["Name"] == "Globex US Inc"
    every = sf.query_all("SELECT Id FROM Account")  # pages of 5, followed through nextRecordsUrl
    assert every["totalSize"] == len(every["records"]) > 5
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(consumer_key="d2r-dev", consumer_secret="wrong", domain="d2r-dev.my", session=session)


def test_jwt_bearer_login(simulator: tuple[str, requests.Session]) -> None:
    _base, session = simulator
    keys = dev_keys()
    sf = Salesforce(
        username="integration@d2r.dev",
        consumer_key="d2r-dev",
        privatekey_file=str(keys.private_key),
        domain="login",
        session=session,
    )
    assert sf.Account.get("001Dd0000000001IAA")["Name"] == "Globex Holdings"
    # simple-salesforce also warns that the app may need authorising for that user
    with pytest.raises(SalesforceAuthenticationFailed, match="approved"), pytest.warns(UserWarning, match="authorize"):
        Salesforce(
            username="someone@else.example",
            consumer_key="d2r-dev",
            privatekey_file=str(keys.private_key),
            domain="login",
            session=session,
        )


def test_sobject_crud_upsert_and_describe(simulator: tuple[str, requests.Session]) -> None:
    sf = client_credentials(simulator[1])
    created = sf.Account.create({"Name": "Simple Co", "Industry": "Consulting"})
    assert created["success"] is True
    account_id = created["id"]
    assert sf.Account.get(account_id)["Industry"] == "Consulting"
    assert sf.Account.update(account_id, {"Industry": "Software"}) == 204
    assert sf.Account.get(account_id)["Industry"] == "Software"
    assert sf.Account.upsert("D2R_Customer_Key__c/SIMPLE-1", {"Name": "Upserted Co"}) == 201
    assert sf.Account.upsert("D2R_Customer_Key__c/SIMPLE-1", {"Name": "Upserted Co 2"}) == 204
    assert sf.Account.get_by_custom_id("D2R_Customer_Key__c", "SIMPLE-1")["Name"] == "Upserted Co 2"
    assert sf.Account.delete(account_id) == 204
    fields = {f["name"] for f in sf.Account.describe()["fields"]}
    assert {"Name", "ParentId", "D2R_Customer_Key__c"} <= fields
    assert sf.Account.metadata()["objectDescribe"]["keyPrefix"] == "001"


def test_incremental_sync_query_all_updated_and_deleted(simulator: tuple[str, requests.Session]) -> None:
    """What a master-data sweep calls: getUpdated / getDeleted over a window, and
    queryAll, which also returns the Recycle Bin's rows (IsDeleted = true)."""
    sf = client_credentials(simulator[1])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    kept = sf.Account.create({"Name": "Sync Co"})["id"]
    gone = sf.Account.create({"Name": "Gone Co"})["id"]
    assert sf.Account.delete(gone) == 204
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    updated = sf.Account.updated(start, end)
    assert kept in updated["ids"] and gone not in updated["ids"]
    deleted = sf.Account.deleted(start, end)
    assert gone in [d["id"] for d in deleted["deletedRecords"]]  # (earlier tests deleted others)
    q = f"SELECT Id, IsDeleted FROM Account WHERE Id IN ('{kept}', '{gone}') ORDER BY Name"
    assert sf.query_all(q)["totalSize"] == 1
    rows = sf.query_all(q, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(gone, True), (kept, False)]


def test_composite_resources_through_restful(simulator: tuple[str, requests.Session]) -> None:
    sf = client_credentials(simulator[1])
    v = f"/services/data/v{sf.sf_version}"
    out = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {"method": "POST", "url": f"{v}/sobjects/Account", "referenceId": "a", "body": {"Name": "Ref Co"}},
                {"method": "GET", "url": f"{v}/sobjects/Account/@{{a.id}}?fields=Name", "referenceId": "b"},
            ],
        },
    )
    assert out is not None
    assert [r["httpStatusCode"] for r in out["compositeResponse"]] == [201, 200]
    assert out["compositeResponse"][1]["body"]["Name"] == "Ref Co"
    batch = sf.restful(
        "composite/batch",
        method="POST",
        json={"batchRequests": [{"method": "GET", "url": f"v{sf.sf_version}/sobjects/Account/001Dd0000000001IAA"}]},
    )
    assert batch is not None and batch["hasErrors"] is False
    assert batch["results"][0]["result"]["Name"] == "Globex Holdings"
    tree = sf.restful(
        "composite/tree/Account",
        method="POST",
        json={"records": [{"attributes": {"type": "Account", "referenceId": "t1"}, "Name": "Tree Co"}]},
    )
    assert tree is not None and tree["results"][0]["referenceId"] == "t1"
