"""`d2r engagements …`: find engagements, read one, decide its approvals, retry or cancel it."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.http import DEFAULT_API, Api, ApiOption, JsonOption, TokenOption, console, errors

app = typer.Typer(help="Find, read and act on engagements (one per closed deal).", no_args_is_help=True)

OpportunityArg = Annotated[str, typer.Argument(help="the CRM opportunity id, e.g. 006Dd0000000002IAA")]
CommentOption = Annotated[str | None, typer.Option("--comment", "-m", help="why (kept with the decision)")]


@app.command("list")
def list_engagements(
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
    stage: Annotated[str | None, typer.Option(help="e.g. IN_DELIVERY, NEEDS_ATTENTION")] = None,
    legal_entity: Annotated[str | None, typer.Option("--legal-entity", "-e", help="e.g. UK01")] = None,
    problem: Annotated[bool, typer.Option("--problem", help="only stuck ones, with the reason")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """List engagements, e.g. `d2r engagements list --stage IN_DELIVERY -e UK01`."""
    found = Api(api, token).get(
        "/v1/engagements", stage=stage, legal_entity=legal_entity, problem="true" if problem else None, limit=limit
    )
    if as_json:
        console.print_json(data=found)
        return
    table = Table("opportunity", "stage", "entity", "status", *(["problem"] if problem else []))
    for e in found:
        table.add_row(
            e.get("opportunity_id") or e["workflow_id"],
            e.get("stage") or "—",
            e.get("legal_entity") or "—",
            e["status"],
            *([e.get("problem") or ""] if problem else []),
        )
    console.print(table)
    console.print(f"{len(found)} engagement(s)")


def pick(data: Any, path: str) -> Any:
    """`invoices.0.lines.0.invoice_line_id` → that value of the view (None if it is not there)."""
    for part in path.split("."):
        if isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


@app.command()
def show(
    opportunity_id: OpportunityArg,
    get: Annotated[
        str | None,
        typer.Option("--get", help="print one field, e.g. stage, pending_approvals, invoices.0.invoice_id"),
    ] = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """The whole engagement view (stage, lines, invoices, approvals) as JSON; `--get` prints one
    field plainly (a list one item a line), for scripts: `APPROVAL=$(d2r engagements show <id>
    --get pending_approvals)`. A field that is not there exits 1."""
    view = Api(api, token).get(f"/v1/engagements/{opportunity_id}")
    if get is None:
        console.print_json(data=view)
        return
    value = pick(view, get)
    if value is None or value == []:
        errors.print(f"{opportunity_id}: no {get} in its view")
        raise typer.Exit(1)
    for item in value if isinstance(value, list) else [value]:
        print(item if isinstance(item, str | int | float) else json.dumps(item))


@app.command()
def wait(
    opportunity_id: OpportunityArg,
    stage: Annotated[list[str], typer.Option("--stage", "-s", help="wait for this stage (repeatable: any of them)")],
    timeout: Annotated[float, typer.Option(help="give up after this many seconds (exit 1)")] = 180.0,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Wait until the engagement reaches one of the stages (an engagement the webhook has not
    started yet, or one too busy to answer, counts as not there yet), e.g.
    `d2r engagements wait <id> -s IN_DELIVERY`."""
    client = Api(api, token)
    wanted = {s.upper() for s in stage}
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        view = client.get(f"/v1/engagements/{opportunity_id}", missing_ok=True)
        seen = view.get("stage") if view else None
        if seen in wanted:
            console.print(f"{opportunity_id}: {seen}")
            return
        time.sleep(1.0)
    errors.print(
        f"{opportunity_id}: still {seen or 'not started'} after {timeout:.0f} s "
        f"(waited for {', '.join(sorted(wanted))})"
    )
    raise typer.Exit(1)


def _decide(api: str, token: str, opportunity_id: str, approval_id: str, decision: str, comment: str | None) -> None:
    body = {"decision": decision, **({"comment": comment} if comment else {})}
    approval = Api(api, token).post(f"/v1/engagements/{opportunity_id}/approvals/{approval_id}", body)
    console.print(f"{approval['approval_id']} ({approval['subject']}): {approval['decision']}")


@app.command()
def approve(
    opportunity_id: OpportunityArg,
    approval_id: Annotated[str, typer.Argument(help="from `d2r engagements show`")],
    comment: CommentOption = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Approve a pending approval (your role must be one it names; not the requester's)."""
    _decide(api, token, opportunity_id, approval_id, "approve", comment)


@app.command()
def reject(
    opportunity_id: OpportunityArg,
    approval_id: Annotated[str, typer.Argument(help="from `d2r engagements show`")],
    comment: CommentOption = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Reject a pending approval."""
    _decide(api, token, opportunity_id, approval_id, "reject", comment)


@app.command()
def retry(opportunity_id: OpportunityArg, api: ApiOption = DEFAULT_API, token: TokenOption = "") -> None:
    """Retry the step of an engagement that needs attention (after the cause was fixed)."""
    Api(api, token).post(f"/v1/engagements/{opportunity_id}/retry")
    console.print(f"{opportunity_id}: retry requested")


@app.command()
def cancel(
    opportunity_id: OpportunityArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="why (kept in the audit log)")],
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Cancel an engagement before it is closed (issued documents stay)."""
    Api(api, token).post(f"/v1/engagements/{opportunity_id}/cancel", {"reason": reason})
    console.print(f"{opportunity_id}: cancel requested")
