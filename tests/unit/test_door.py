"""The door's own checks, without Temporal: the open window's edges, and webhooks bound to
their source's secret (a correctly signed event on the other source's URL is refused)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import date

import httpx
import pytest

from api.app import create_app
from api.door import OpenWindow
from api.problems import ProblemError
from api.settings import ApiSettings

CRM_SECRET = "whsec_" + base64.b64encode(b"crm-secret-0123456789abcdef012345").decode()
ERP_SECRET = "whsec_" + base64.b64encode(b"erp-secret-0123456789abcdef012345").decode()


def test_the_window_runs_from_months_back_to_months_forward_across_years() -> None:
    window = OpenWindow.around(date(2026, 1, 15), months_back=12, months_forward=1)
    assert (window.first, window.last) == ("2025-01", "2026-02")
    assert window.check_period("2025-01", "period") == "2025-01"
    assert window.check_date(date(2026, 2, 28), "day") == date(2026, 2, 28)
    for period in ("2024-12", "2026-03", "2026-13", "2026-00", "0000-01", "26-01"):
        with pytest.raises(ProblemError) as refused:
            window.check_period(period, "period")
        assert refused.value.status == 422 and refused.value.extra["errors"][0]["field"] == "period"
    with pytest.raises(ProblemError):
        window.check_date(date(2026, 3, 1), "day")


def signed(secret: str, event: object, event_id: str = "evt_bound") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    ts = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = base64.b64encode(hmac.new(key, f"{event_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return body, {"webhook-id": event_id, "webhook-timestamp": ts, "webhook-signature": f"v1,{mac}"}


def client() -> httpx.AsyncClient:
    settings = ApiSettings(
        profile="dev",
        static_tokens=True,
        salesforce=None,
        webhook_secrets={"salesforce": CRM_SECRET, "netsuite": ERP_SECRET},
    )
    app = create_app(settings, temporal=object())  # type: ignore[arg-type]  # refused before Temporal
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_an_event_signed_with_one_sources_secret_is_refused_on_the_others_url() -> None:
    event = {"type": "payment.received", "data": {"payment_id": "1", "currency": "USD", "tran_date": "2026-11-02"}}
    body, headers = signed(ERP_SECRET, event)
    async with client() as http:
        response = await http.post("/v1/webhooks/salesforce", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_malformed_body_signed_with_the_right_secret_is_400_naming_the_field() -> None:
    async with client() as http:
        for event, field in (([1, 2], "body"), ({"data": "zzz"}, "type")):
            body, headers = signed(CRM_SECRET, event)
            response = await http.post("/v1/webhooks/salesforce", content=body, headers=headers)
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["field"] == field


def test_the_openapi_document_lists_every_error_status_as_problem_json() -> None:
    app = create_app(ApiSettings(profile="dev", salesforce=None), temporal=object())  # type: ignore[arg-type]
    schema = app.openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    operations = [(path, op) for path, ops in schema["paths"].items() for op in ops.values()]
    assert len(operations) > 20
    for path, operation in operations:
        responses = operation["responses"]
        assert {"401", "403", "422"} <= set(responses), path
        for code, response in responses.items():
            if int(code) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (path, code)
    start = schema["paths"]["/v1/engagements"]["post"]["responses"]
    assert {"200", "202", "404"} <= set(start)
