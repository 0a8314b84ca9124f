"""d2r's custom search attributes: few (SQL visibility allows 10 Keyword, 3 Bool...) and
never personal data. The dev launcher and the tests register exactly this list."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

OPPORTUNITY_ID = SearchAttributeKey.for_keyword("D2ROpportunityId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("D2RCustomerId")
PROJECT_ID = SearchAttributeKey.for_keyword("D2RProjectId")
CONTRACT_ID = SearchAttributeKey.for_keyword("D2RContractId")
LEGAL_ENTITY = SearchAttributeKey.for_keyword("D2RLegalEntity")
STAGE = SearchAttributeKey.for_keyword("D2RStage")
BILLING_MODELS = SearchAttributeKey.for_keyword_list("D2RBillingModels")
PENDING_APPROVAL = SearchAttributeKey.for_bool("D2RPendingApproval")

ALL: list[SearchAttributeKey[Any]] = [
    OPPORTUNITY_ID,
    CUSTOMER_ID,
    PROJECT_ID,
    CONTRACT_ID,
    LEGAL_ENTITY,
    STAGE,
    BILLING_MODELS,
    PENDING_APPROVAL,
]
