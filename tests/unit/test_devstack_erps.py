"""`make run` routes UK01 to the D365 simulator by configuration: the environment the dev
launcher gives the worker parses into two ERP instances and the routing."""

from __future__ import annotations

import pytest

from workers.devstack import D365_PORT, NS_PORT, two_erps
from workers.settings import WorkerSettings


def test_the_dev_stack_books_uk01_in_d365_and_the_rest_in_netsuite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("D2R_ERP_INSTANCES", raising=False)
    monkeypatch.delenv("D2R_ERP_ROUTING", raising=False)
    for name, value in two_erps().items():
        monkeypatch.setenv(name, value)
    settings = WorkerSettings()
    assert settings.erp_routing == {"UK01": "d365"}
    d365, netsuite = settings.erp_instances["d365"], settings.erp_instances["default"]
    assert (d365.vendor, d365.url, d365.options["tenant"]) == (
        "dynamics",
        f"http://127.0.0.1:{D365_PORT}",
        two_erps_tenant(),
    )
    assert (netsuite.vendor, netsuite.url) == (None, f"http://127.0.0.1:{NS_PORT}")
    assert settings.erp_default_instance == "default"  # US01, DE01, JP01


def test_an_operators_own_routing_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D2R_ERP_ROUTING", '{"UK01": "default"}')
    assert two_erps()["D2R_ERP_ROUTING"] == '{"UK01": "default"}'


def two_erps_tenant() -> str:
    from simulators.dynamics.settings import DEFAULT_TENANT

    return DEFAULT_TENANT
