"""The API the month-end integration tests drive: static tokens for two finance people (four
eyes needs two) and a sales user, on the test's own task queues."""

from __future__ import annotations

from typing import Any

from api.settings import ApiSettings
from workers.settings import VendorEndpoint


def month_end_api_settings(workflow_queue: str, queues: Any, salesforce_url: str) -> ApiSettings:
    return ApiSettings(
        workflow_task_queue=workflow_queue,
        crm_task_queue=queues.crm,
        psa_task_queue=queues.psa,
        erp_task_queue=queues.erp,
        salesforce=VendorEndpoint(url=salesforce_url),
        static_tokens=True,
        api_tokens={
            "fin-a": {"subject": "fiona", "roles": ["finance"]},  # type: ignore[dict-item]
            "fin-b": {"subject": "felix", "roles": ["finance"]},  # type: ignore[dict-item]
            "sales": {"subject": "sam", "roles": ["sales_ops"]},  # type: ignore[dict-item]
        },
    )
