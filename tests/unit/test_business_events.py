"""The business-event log's line shape and the keys it finds (workers/business_events.py)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from workers.business_events import LOGGER_NAME, business_keys, setup_event_log


class Inner(BaseModel):
    legal_entity: str
    project_id: str


class StepInput(BaseModel):
    period: str
    engagement: Inner


def test_keys_come_from_the_input_then_the_workflow_id() -> None:
    keys = business_keys(
        "engagement-006X", [StepInput(period="2026-11", engagement=Inner(legal_entity="UK01", project_id="P1"))]
    )
    assert keys == {"opportunity_id": "006X", "legal_entity": "UK01", "project_id": "P1", "period": "2026-11"}
    assert business_keys("close-UK01-2026-11", []) == {}


def test_lines_go_to_their_own_file_as_json_not_to_the_process_log(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    logger = setup_event_log(path)
    try:
        logger.info(
            "erp.upsert_customer completed",
            extra={"event": {"event": "step.completed", "step": "erp.upsert_customer"}},
        )
        [line] = path.read_text().splitlines()
        event = json.loads(line)
        assert event["event"] == "step.completed" and event["step"] == "erp.upsert_customer"
        assert event["ts"].endswith("+00:00")
        assert logger.name == LOGGER_NAME and logger.propagate is False  # not into worker.log's handlers
    finally:
        for handler in list(logger.handlers):
            if getattr(handler, "baseFilename", None) == str(path.resolve()):
                logger.removeHandler(handler)
                handler.close()
        logger.propagate = True
