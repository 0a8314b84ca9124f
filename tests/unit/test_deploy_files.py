"""The production compose file parses and keeps the shape DESIGN.md promises, and its
search-attribute bootstrap registers exactly the attributes the workflows use."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from contracts import search_attributes as sa

ROOT = Path(__file__).resolve().parents[2]


def test_compose_parses_and_has_the_production_shape() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in [
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-bootstrap",
        "temporal-ui",
        "hub-postgres",
        "hub-migrate",
        "worker",
        "api",
        "otel-collector",
    ]:
        assert name in services, name
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["hub-migrate"]["condition"] == "service_completed_successfully"
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["environment"]["BIND_ON_IP"] == "0.0.0.0"


def test_bootstrap_registers_every_search_attribute_with_its_type() -> None:
    script = (ROOT / "deploy/scripts/bootstrap-temporal.sh").read_text()
    pairs = dict(re.findall(r"--name (\w+) --type (\w+)", script))
    expected = {k.name: k.indexed_value_type.name for k in sa.ALL}
    assert set(pairs) == set(expected)
    for name, kind in pairs.items():
        assert kind.upper().replace("KEYWORDLIST", "KEYWORD_LIST") == expected[name]


def test_worker_replicas_poll_as_a_deployment_version_and_the_server_tells_pinned_runs() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    current, rollout = services["worker"]["environment"], services["worker-next"]["environment"]
    assert current["D2R_DEPLOYMENT_NAME"] == rollout["D2R_DEPLOYMENT_NAME"]  # one deployment, two builds
    assert current["D2R_BUILD_ID"] == "${D2R_VERSION:-dev}" != rollout["D2R_BUILD_ID"]
    assert (current["D2R_SET_CURRENT_VERSION"], rollout["D2R_SET_CURRENT_VERSION"]) == ("when_unset", "never")
    assert services["worker-next"]["profiles"] == ["rollout"]
    dynamic = yaml.safe_load((ROOT / "deploy/dynamicconfig/production-sql.yaml").read_text())
    for key in ["system.enableDeploymentVersions", "system.enableSendTargetVersionChanged"]:
        assert dynamic[key][0]["value"] is True, key
