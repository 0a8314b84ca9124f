"""Which workflows and activities run on which task queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.composition import ActivitySet
from workflows.engagement import EngagementWorkflow
from workflows.event_poll import EventPollWorkflow
from workflows.fx_sync import FxSyncWorkflow
from workflows.inbound import InboundEventWorkflow
from workflows.master_data import (
    ConflictResolutionWorkflow,
    ConsultantSyncWorkflow,
    CustomerSyncWorkflow,
    ProjectSyncWorkflow,
)
from workflows.period_close import PeriodCloseWorkflow
from workflows.period_close_window import PeriodCloseWindowWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow

WORKFLOWS: list[type] = [EngagementWorkflow, InboundEventWorkflow, TimeAndExpensePostingWorkflow, PeriodCloseWorkflow]
WORKFLOWS.append(SourceSyncWorkflow)
WORKFLOWS.append(EventPollWorkflow)
WORKFLOWS.append(FxSyncWorkflow)
WORKFLOWS += [CustomerSyncWorkflow, ConsultantSyncWorkflow, ProjectSyncWorkflow, ConflictResolutionWorkflow]
WORKFLOWS.append(PeriodCloseWindowWorkflow)


def activities_by_role(acts: ActivitySet) -> dict[str, list[Callable[..., Any]]]:
    roles = _core(acts)
    # Posting pages run on the ERP queue (the ERP is the bottleneck, and its limit applies);
    # the close's Temporal-facing activities run beside the workflows.
    if acts.posting is not None:
        roles["erp"].append(acts.posting.post_page)
    if acts.period_lock is not None:
        roles["erp"].append(acts.period_lock.lock_period)
    if acts.close is not None:
        roles["workflows"] += [
            acts.close.find_engagements,
            acts.close.close_engagements,
            acts.close.reconcile,
            acts.close.notify_overdue,
            acts.close.hand_back,
        ]
    if acts.reporting is not None:
        roles["reporting"] = [acts.reporting.record_engagement, acts.reporting.record_engagements]
    if acts.hub_exceptions is not None:
        roles.setdefault("reporting", []).extend(
            [
                acts.hub_exceptions.raise_exception,
                acts.hub_exceptions.exception_retrying,
                acts.hub_exceptions.resolve_exception,
            ]
        )
    if acts.source_sync is not None:  # extraction on the system queues, the hub steps beside the workflows
        roles["psa"].append(acts.source_sync.psa_page)
        roles["crm"].append(acts.source_sync.crm_bookings)
        roles["erp"] += [acts.source_sync.erp_time_page, acts.source_sync.erp_entity]
        roles["workflows"] += [acts.source_sync.commit, acts.source_sync.reconcile]
    if acts.fx_lookup is not None:  # a hub read, beside the engagement's other hub calls
        roles.setdefault("reporting", []).append(acts.fx_lookup.rates_on)
    if acts.fx_sync is not None:  # reading the ERP's rates is ERP work, under its limits
        roles["erp"].append(acts.fx_sync.sync_page)
    if acts.feeds is not None:  # polling a PSA is PSA work, under the PSA queue's limits
        roles["psa"].append(acts.feeds.poll)
    if acts.master_data is not None:  # master-data pages write to the ERPs, under the ERP queue's limits
        m = acts.master_data
        roles["erp"] += [m.customer_page, m.consultant_page, m.project_page, m.resolve_conflict]
    return roles


def _core(acts: ActivitySet) -> dict[str, list[Callable[..., Any]]]:
    return {
        # local activities (configuration) run on the workflow worker
        "workflows": [acts.config.deal_rules, acts.config.finance],
        "crm": [
            acts.crm.read_opportunity,
            acts.crm.write_links,
            acts.crm_feedback.write_billing_status,
            acts.crm_feedback.write_billing_status_window,
            acts.crm_feedback.set_contract_value,
            acts.crm_feedback.notify,
        ],
        "psa": [
            acts.psa.create_project,
            acts.psa.remove_project,
            acts.psa_delivery.read_delivery,
            acts.psa_delivery.read_deliveries,
            acts.psa_delivery.feedback_window,
            acts.psa_delivery.feedback,
            acts.psa_delivery.apply_change,
            acts.psa_delivery.set_stage,
            acts.psa_inbound.project_opportunity,
        ],
        "erp": [
            acts.erp.upsert_customer,
            acts.erp.create_sales_order,
            acts.erp.cancel_sales_order,
            acts.erp_billing.update_sales_order,
            acts.erp_billing.close_sales_order,
            acts.erp_billing.post_documents,
            acts.erp_billing.post_documents_window,
            acts.erp_billing.receivables_window,
            acts.erp_billing.open_items_due,
            acts.erp_billing.void_credit_memo,
            acts.erp_billing.reverse_journal,
            acts.erp_billing.invoice_status,
            acts.erp_billing.receipts,
            acts.erp_inbound.invoice_lineage,
        ],
    }
