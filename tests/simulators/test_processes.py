"""The simulators as real processes: restart persistence and signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators._settings import DEFAULT_WEBHOOK_SECRET
from tests.simulators.procs import free_port, kill9, start, stop
from tests.vendor_auth import netsuite_token_form

SF_V = "/services/data/v61.0"
CREDS = {"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"}


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s.split(",", 1)[1], expected) for s in headers["webhook-signature"].split(" "))


class Receiver:
    """A tiny webhook receiver; fails the first `fail_first` deliveries with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.fail_left = fail_first
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if outer.fail_left > 0:
                    outer.fail_left -= 1
                    self.send_response(500)
                else:
                    outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, n: int, timeout: float = 10) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.got) < n:
            time.sleep(0.05)
        return self.got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


def sf_token(base: str) -> str:
    r = httpx.post(f"{base}/services/oauth2/token", data=CREDS)
    assert r.status_code == 200
    return str(r.json()["access_token"])


def test_salesforce_restart_and_kill9_lose_nothing(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "sf.sqlite"
    base = f"http://127.0.0.1:{port}"
    proc = start("simulators.salesforce", port, db, "--seed", "demo")
    try:
        tok = sf_token(base)
        h = {"authorization": f"Bearer {tok}"}
        counts = httpx.get(f"{base}/__admin/counts").json()
        ids = []
        for i in range(20):
            r = httpx.post(f"{base}{SF_V}/sobjects/Account", headers=h, json={"Name": f"K{i}"})
            assert r.status_code == 201
            ids.append(r.json()["id"])
        r = httpx.patch(f"{base}{SF_V}/sobjects/Account/{ids[0]}", headers=h, json={"Industry": "Kill"})
        assert r.status_code == 204
        kill9(proc)
        proc = start("simulators.salesforce", port, db, "--seed", "demo")
        # the seed did not run again; the token survived; every acknowledged write is there
        after = httpx.get(f"{base}/__admin/counts").json()
        assert after["Account"] == counts["Account"] + 20
        assert after["Opportunity"] == counts["Opportunity"]
        r = httpx.get(f"{base}{SF_V}/sobjects/Account/{ids[0]}", headers=h)
        assert r.status_code == 200 and r.json()["Industry"] == "Kill"
        r = httpx.get(
            f"{base}{SF_V}/query", headers=h, params={"q": "SELECT COUNT() FROM Account WHERE Name LIKE 'K%'"}
        )
        assert r.json()["totalSize"] == 20
        # new ids continue the sequence
        r = httpx.post(f"{base}{SF_V}/sobjects/Account", headers=h, json={"Name": "after"})
        assert r.json()["id"] not in ids
    finally:
        stop(proc)


def test_netsuite_restart_persistence(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "ns.sqlite"
    base = f"http://127.0.0.1:{port}"
    proc = start("simulators.netsuite", port, db, "--seed", "demo", "--instance", "erp-us", "--subsidiaries", "US01")
    try:
        r = httpx.post(f"{base}/services/rest/auth/oauth2/v1/token", data=netsuite_token_form(base))
        h = {"authorization": "Bearer " + r.json()["access_token"]}
        assert httpx.get(f"{base}/__admin/seed-info").json()["subsidiaries"] == {"US01": "1"}
        r = httpx.put(
            f"{base}/services/rest/record/v1/customer/eid:c1",
            headers=h,
            json={"companyName": "Persisted", "subsidiary": {"externalId": "US01"}},
        )
        assert r.status_code == 204
        kill9(proc)
        proc = start("simulators.netsuite", port, db, "--seed", "demo")
        r = httpx.get(f"{base}/services/rest/record/v1/customer/eid:c1", headers=h)
        assert r.status_code == 200 and r.json()["companyName"] == "Persisted"
        assert httpx.get(f"{base}/__admin/counts").json()["subsidiary"] == 1
    finally:
        stop(proc)


def test_signed_webhooks_with_retry_and_duplicates(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start("simulators.salesforce", port, tmp_path / "sf.sqlite", "--seed", "demo", "--webhook-url", receiver.url)
    try:
        h = {"authorization": f"Bearer {sf_token(base)}"}
        opp = "006Dd0000000006IAA"  # Negotiation/Review in the demo seed
        r = httpx.patch(f"{base}{SF_V}/sobjects/Opportunity/{opp}", headers=h, json={"StageName": "Closed Won"})
        assert r.status_code == 204
        got = receiver.wait(1)  # the first delivery got a 500 and was retried
        assert len(got) == 1
        headers, body = got[0]
        assert verify(DEFAULT_WEBHOOK_SECRET, headers, body)
        assert not verify("whsec_" + base64.b64encode(b"other").decode(), headers, body)
        event = json.loads(body)
        assert event["type"] == "opportunity.closed_won"
        assert event["id"] == headers["webhook-id"]
        assert event["data"]["opportunity_id"] == opp
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        # duplicated deliveries carry the same webhook-id
        httpx.post(f"{base}/__admin/faults", json={"webhook_duplicate_rate": 1.0, "seed": 7})
        proj = httpx.post(f"{base}{SF_V}/sobjects/pse__Proj__c", headers=h, json={"Name": "P"}).json()["id"]
        tc = httpx.post(
            f"{base}{SF_V}/sobjects/pse__Timecard_Header__c",
            headers=h,
            json={
                "pse__Project__c": proj,
                "pse__Resource__c": "003Dd0000000001IAA",
                "pse__Start_Date__c": "2026-11-30",
                "pse__End_Date__c": "2026-12-06",
                "pse__Monday_Hours__c": 8,
                "pse__Tuesday_Hours__c": 4,
            },
        ).json()["id"]
        httpx.patch(
            f"{base}{SF_V}/sobjects/pse__Timecard_Header__c/{tc}", headers=h, json={"pse__Status__c": "Approved"}
        )
        got = receiver.wait(3)
        assert len(got) == 3
        assert got[1][0]["webhook-id"] == got[2][0]["webhook-id"]
        ev = json.loads(got[2][1])
        assert ev["type"] == "timecard.approved" and ev["data"]["hours"] == 12
        status = httpx.get(f"{base}/__admin/webhooks").json()
        assert status["pending"] == 0 and status["total"] == 2
    finally:
        stop(proc)


def test_netsuite_invoice_and_payment_events(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secret = "whsec_" + base64.b64encode(b"ns-secret-for-tests").decode()
    proc = start(
        "simulators.netsuite",
        port,
        tmp_path / "ns.sqlite",
        "--seed",
        "demo",
        env={"SIM_WEBHOOK_URL": receiver.url, "SIM_WEBHOOK_SECRET": secret},
    )
    try:
        r = httpx.post(f"{base}/services/rest/auth/oauth2/v1/token", data=netsuite_token_form(base))
        h = {"authorization": "Bearer " + r.json()["access_token"]}
        rec = f"{base}/services/rest/record/v1"
        r = httpx.put(
            f"{rec}/customer/eid:c1", headers=h, json={"companyName": "Evt", "subsidiary": {"externalId": "UK01"}}
        )
        cid = r.headers["location"].rsplit("/", 1)[-1]
        r = httpx.post(
            f"{rec}/invoice",
            headers=h,
            json={
                "entity": {"id": cid},
                "tranDate": "2026-11-30",
                "externalId": "inv-9",
                "custbody_d2r_billing_event_id": "be-1",
                "item": {"items": [{"item": {"externalId": "CONS-TM"}, "description": "x", "quantity": 2, "rate": 50}]},
            },
        )
        inv = r.headers["location"].rsplit("/", 1)[-1]
        r = httpx.post(f"{rec}/invoice/{inv}/!transform/customerPayment", headers=h, json={"tranDate": "2026-12-05"})
        assert r.status_code == 204
        # the first delivery failed and was retried, so the order is not guaranteed
        got = sorted(receiver.wait(2), key=lambda x: json.loads(x[1])["type"])
        assert [json.loads(b)["type"] for _, b in got] == ["invoice.posted", "payment.received"]
        assert all(verify(secret, hh, b) for hh, b in got)
        inv_ev = json.loads(got[0][1])["data"]
        assert inv_ev["total"] == 100 and inv_ev["currency"] == "GBP"
        assert inv_ev["custbody_d2r_billing_event_id"] == "be-1"
        pay = json.loads(got[1][1])["data"]
        assert pay["applied"][0]["invoice_id"] == inv
        assert pay["applied"][0]["invoice_status"] == "Paid In Full"
    finally:
        stop(proc)


def test_response_lost_drops_the_connection_after_commit(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(
        "simulators.salesforce",
        port,
        tmp_path / "sf.sqlite",
        "--seed",
        "none",
        "--faults",
        '{"response_lost_rate": 1.0}',
    )
    try:
        h = {"authorization": f"Bearer {sf_token(base)}"}
        url = f"{base}{SF_V}/sobjects/Account/D2R_Customer_Key__c/lost-1"
        with pytest.raises(httpx.TransportError):
            httpx.patch(url, headers=h, json={"Name": "Lost Co"})
        assert httpx.get(f"{base}/__admin/counts").json() == {"Account": 1}
        httpx.delete(f"{base}/__admin/faults")
        r = httpx.patch(url, headers=h, json={"Name": "Lost Co"})
        assert r.status_code == 204  # the retry finds the committed record
        assert httpx.get(f"{base}/__admin/duplicates").json()["count"] == 0
    finally:
        stop(proc)


def test_http_details_on_uvicorn(tmp_path: Path) -> None:
    import socket

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start("simulators.salesforce", port, tmp_path / "sf.sqlite", "--seed", "none")
    try:
        tok = sf_token(base)
        h = {"authorization": f"Bearer {tok}", "content-type": "application/json"}

        def chunks() -> Iterator[bytes]:
            yield b'{"Name": "Chunked'
            yield b' Co", "Industry": "' + b"x" * 3000 + b'"}'

        r = httpx.post(f"{base}{SF_V}/sobjects/Account", headers=h, content=chunks())
        assert r.status_code == 201, r.text
        # Expect: 100-continue, pipelining and Connection: close on one raw socket
        body = json.dumps({"Name": "Raw Co"}).encode()
        head = (
            f"POST {SF_V}/sobjects/Account HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
        get = (
            f"GET {SF_V}/query?q=SELECT+COUNT()+FROM+Account HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {tok}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(head)
            assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
            s.sendall(body + get)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 201 Created")
        assert b"HTTP/1.1 200 OK" in data and data.endswith(b'{"totalSize":2,"done":true,"records":[]}')
        # malformed request line -> 400 and close
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"NONSENSE\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400")
    finally:
        stop(proc)
