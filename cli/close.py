"""`d2r close …`: a legal entity's month-end — start it, watch it, approve its lock, read its report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.http import DEFAULT_API, Api, ApiOption, JsonOption, TokenOption, console, money

app = typer.Typer(
    help="Month-end close of a legal entity: start, watch, approve or cancel the lock, report.",
    no_args_is_help=True,
)

EntityArg = Annotated[str, typer.Argument(help="the legal entity, e.g. UK01")]
PeriodArg = Annotated[str, typer.Argument(help="the month, e.g. 2026-11")]

# The close's steps in order (contracts.period_close.CloseStep); REJECTED ends it early.
STEPS = ["CUT_OFF", "POSTING", "BILLING", "RECONCILING", "AWAITING_APPROVAL", "LOCKING", "CLOSED"]
# Where a watch stops: a person has to act, or the close has ended.
ENDED = {"CLOSED", "REJECTED", "CANCELLED", "DELEGATED"}
SETTLED = ENDED | {"AWAITING_APPROVAL"}
PAGE = 200  # report lines per request


def _path(entity: str, period: str) -> str:
    return f"/v1/period-close/{entity.upper()}/{period}"


def progress(report: dict[str, Any]) -> Group:
    """The close as it stands: the steps ticked off, then posting, billing, reconciliation and lock."""
    step = report.get("step", "CUT_OFF")
    reached = STEPS.index(step) if step in STEPS else len(STEPS)
    line = Text()
    for i, name in enumerate(STEPS):
        style = "green" if i < reached or step == "CLOSED" else ("bold yellow" if i == reached else "dim")
        line.append(("✔ " if i < reached or step == "CLOSED" else "• ") + name, style=style)
        line.append("  ")
    if step not in STEPS:
        line.append(step, style="bold red")
    table = Table.grid(padding=(0, 2))
    posting = (report.get("posting") or {}).get("progress") or {}
    table.add_row(
        "posting",
        f"page {posting.get('page', 0)}, {posting.get('projects', 0)} projects, "
        f"{posting.get('time_entries', 0)} time entries, {posting.get('expenses', 0)} expenses, "
        f"{posting.get('erp_records', 0)} ERP records"
        if posting
        else "—",
    )
    table.add_row(
        "billing",
        f"{report.get('engagements_total', 0)} engagement(s) in {report.get('windows', 0)} window(s), "
        f"{report.get('engagements_failed', 0)} failed, {report.get('handed_back', 0)} writing their own",
    )
    totals = report.get("totals") or {}
    table.add_row("invoiced", f"{totals.get('invoices', 0)} invoice(s), billed {money(totals.get('billed'))}")
    table.add_row("recognized", money(totals.get("recognized")))
    table.add_row("deferred", money(totals.get("deferred")))
    recon = report.get("reconciliation") or {}
    table.add_row("reconciliation", f"{recon['status']} ({recon.get('differences', 0)} differences)" if recon else "—")
    approval = report.get("approval") or {}
    table.add_row(
        "lock approval",
        f"{approval.get('approval_id')}: {approval.get('decision')} (by {_roles(approval)})" if approval else "—",
    )
    table.add_row("locked", "yes" if report.get("locked") else "no")
    table.add_row("exceptions", str(report.get("exceptions_total", 0)))
    title = Text(f"{report.get('legal_entity')} {report.get('period')} — {step}", style="bold")
    return Group(title, line, table)


@app.command()
def start(
    legal_entity: EntityArg,
    period: PeriodArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="then follow it until it waits or ends")] = False,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Start the month-end close (idempotent: a close already started is shown)."""
    client = Api(api, token)
    report = client.post("/v1/period-close", {"legal_entity": legal_entity.upper(), "period": period})
    console.print(f"close {report['workflow_id']}: {report['step']}")
    if watch:
        _watch(client, legal_entity, period, interval=1.0, timeout=600.0)


@app.command()
def status(
    legal_entity: EntityArg,
    period: PeriodArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until it waits for approval or ends")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 1.0,
    timeout: Annotated[float, typer.Option(help="stop watching after this many seconds")] = 600.0,
    until: Annotated[
        str | None,
        typer.Option(help="with --watch: refresh until this step (e.g. CANCELLED after a cancel), or the close ends"),
    ] = None,
    as_json: JsonOption = False,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Where the close stands: steps, posting pages, billing, reconciliation, lock."""
    client = Api(api, token)
    if watch:
        stop = SETTLED if until is None else ENDED | {until.upper()}
        _watch(client, legal_entity, period, interval=interval, timeout=timeout, stop=stop)
        if until is not None and client.get(_path(legal_entity, period)).get("step") != until.upper():
            raise typer.Exit(1)  # it ended otherwise
        return
    report = client.get(_path(legal_entity, period))
    if as_json:
        console.print_json(data=report)
    else:
        console.print(progress(report))


def _watch(
    client: Api, legal_entity: str, period: str, *, interval: float, timeout: float, stop: set[str] = SETTLED
) -> None:
    deadline = time.monotonic() + timeout
    report = client.get(_path(legal_entity, period))
    with Live(progress(report), console=console, refresh_per_second=4, transient=False) as live:
        while report.get("step") not in stop and time.monotonic() < deadline:
            time.sleep(interval)
            report = client.get(_path(legal_entity, period))
            live.update(progress(report))
    if report.get("step") not in stop:
        console.print(f"still {report.get('step')} after {timeout:.0f}s")
        raise typer.Exit(4)


@app.command()
def approve(
    legal_entity: EntityArg,
    period: PeriodArg,
    reject: Annotated[bool, typer.Option("--reject", help="reject the lock instead")] = False,
    comment: Annotated[str | None, typer.Option("--comment", "-m")] = None,
    override_reason: Annotated[
        str | None, typer.Option(help="required to approve while reconciliation shows differences")
    ] = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Approve (or --reject) locking the period: finance, not whoever started the close."""
    body: dict[str, Any] = {"decision": "reject" if reject else "approve"}
    if comment:
        body["comment"] = comment
    if override_reason:
        body["override_reason"] = override_reason
    answer = Api(api, token).post(f"{_path(legal_entity, period)}/approve", body)
    console.print(f"{legal_entity.upper()} {period}: {body['decision']} sent ({answer.get('step', answer)})")


@app.command()
def cancel(
    legal_entity: EntityArg,
    period: PeriodArg,
    reason: Annotated[str | None, typer.Option("--reason", "-m")] = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Cancel the close before its lock (finance, the requester too, or the integration admin)."""
    answer = Api(api, token).post(f"{_path(legal_entity, period)}/cancel", {"reason": reason} if reason else None)
    console.print(f"{legal_entity.upper()} {period}: cancel sent ({answer.get('step', answer)})")


@app.command()
def report(
    legal_entity: EntityArg,
    period: PeriodArg,
    as_json: JsonOption = False,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """The close report: totals, then one line per engagement, then its exceptions (both read
    page by page from the API)."""
    client = Api(api, token)
    found = client.get(_path(legal_entity, period))
    in_hub = bool(found.get("lines_in_hub"))  # without a hub only the summary (and its sample) exists
    lines = list(_pages(client, f"{_path(legal_entity, period)}/engagements")) if in_hub else []
    exceptions = list(_pages(client, f"{_path(legal_entity, period)}/exceptions")) if in_hub else found["exceptions"]
    if as_json:
        console.print_json(data={**found, "engagements": lines, "exceptions": exceptions})
        return
    console.print(progress(found))
    table = Table("engagement", "ok", "invoices", "billed", "recognized", "deferred", "error", title="engagements")
    for e in lines:
        table.add_row(
            e["workflow_id"],
            "yes" if e["ok"] else "no",
            str(e.get("invoices", 0)),
            *(_amount(e.get(k)) for k in ("billed", "recognized", "deferred")),
            e.get("outbox_error") or e.get("error") or "",
        )
    console.print(table if in_hub else "engagements: the lines are kept in the reporting hub, and there is none")
    listed = Table("code", "severity", "message", title="exceptions" if in_hub else "exceptions (a sample)")
    for x in exceptions:
        listed.add_row(str(x.get("code")), str(x.get("severity", "")), str(x.get("message", "")))
    console.print(listed)


def _pages(client: Api, path: str) -> Iterator[dict[str, Any]]:
    """Every item of a paged report, following `next_cursor`."""
    cursor: str | None = None
    while True:
        page = client.get(path, limit=PAGE, cursor=cursor)
        yield from page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return


def _roles(approval: dict[str, Any]) -> str:
    return ", ".join(approval.get("approver_roles", []))


def _amount(value: dict[str, Any] | None) -> str:
    return f"{value['currency']} {value['amount']}" if value else "—"
