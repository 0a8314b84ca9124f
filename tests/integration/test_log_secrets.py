"""Secrets never reach a log line: a run through the real API (tokens in headers, a token in
a dashboard URL, the codec, signed webhooks) with every logger at DEBUG and the redaction
`python -m api` installs; then the captured lines and the simulators' logs are scanned
for every secret in play."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

from security import redact
from security.dev_issuer import mint
from tests.conftest import TEST_KEY_RING
from tests.integration.conftest import Stack
from tests.integration.test_engagement_path import seed_info

pytestmark = pytest.mark.integration

LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "temporalio")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    capture = Capture()
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    redact.install(*LOGGERS[1:])  # what `python -m api` does once uvicorn has set up logging
    try:
        yield capture
    finally:
        for name, level in saved.items():
            logging.getLogger(name).removeHandler(capture)
            logging.getLogger(name).setLevel(level)


async def test_no_secret_in_any_log_line(stack: Stack, captured: Capture) -> None:
    assert stack.issuer_key is not None
    token = mint(stack.issuer_key, stack.issuer, subject="sam", roles=["sales_ops", "auditor"], entities=["*"])
    bearer = {"Authorization": f"Bearer {token}"}
    opportunity_id = (await seed_info(stack))["opportunities"]["valid"]["jp01_milestone"]
    assert (
        await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=bearer)
    ).status_code in (200, 202)
    assert (await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=bearer)).status_code == 200
    assert (await stack.api.get("/dashboard", params={"token": token})).status_code == 200
    assert (await stack.api.post("/codec/session", json={"token": token})).status_code == 204
    assert (await stack.api.get("/v1/engagements", headers={"Authorization": "Bearer not-a-token"})).status_code == 401
    logging.getLogger("d2r.test").info("caller sent Authorization: Bearer %s", token)  # a careless log line

    secrets = {
        "the bearer token": token,
        "its signature": token.rsplit(".", 1)[1],
        **{f"codec key {k}": base64.b64encode(v).decode() for k, v in TEST_KEY_RING.keys.items()},
        "the dev issuer key": stack.issuer_key.read_text().splitlines()[1],
    }
    logs = "\n".join(captured.lines)
    assert len(captured.lines) > 10 and "/dashboard" in logs  # the run was logged, access lines included
    sims = "\n".join(p.read_text(errors="replace") for sim in stack.sims.values() for p in _logs_of(sim.process.args))
    leaked = [name for name, value in secrets.items() if value in logs or value in sims]
    assert leaked == [], f"secrets in logs: {leaked}"


def _logs_of(args: object) -> list:  # type: ignore[type-arg]
    """The simulator's log file, from its command line (`--db <dir>/x.sqlite`: the log sits beside it)."""
    from pathlib import Path

    parts = [str(a) for a in args] if isinstance(args, list) else []
    if "--db" not in parts:
        return []
    folder = Path(parts[parts.index("--db") + 1]).parent
    return sorted(folder.glob("*.log"))
