"""`d2r exceptions list`: the business problems a person must look at."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.http import DEFAULT_API, Api, ApiOption, JsonOption, TokenOption, console

app = typer.Typer(help="Exceptions: business problems a person must look at.", no_args_is_help=True)


@app.command("list")
def list_exceptions(
    status: Annotated[str, typer.Option(help="open | retrying | resolved | all")] = "open",
    kind: Annotated[str | None, typer.Option(help="e.g. rate_missing")] = None,
    legal_entity: Annotated[str | None, typer.Option("--legal-entity", "-e")] = None,
    opportunity: Annotated[str | None, typer.Option("--opportunity", "-o", help="one deal's exceptions")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonOption = False,
    ids: Annotated[bool, typer.Option("--ids", help="print only the ids, one a line (for scripts)")] = False,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """List exceptions, open ones by default, e.g. `d2r exceptions list -e UK01`."""
    found = Api(api, token).get(
        "/v1/exceptions",
        status=status,
        kind=kind,
        legal_entity=legal_entity,
        opportunity_id=opportunity,
        limit=limit,
    )
    items = found.get("items", [])
    if ids:
        for x in items:
            print(x["id"])
        return
    if as_json:
        console.print_json(data=items)
        return
    table = Table("id", "kind", "entity", "status", "seen", "workflow", "message")
    for x in items:
        table.add_row(
            str(x.get("id", "")),
            str(x.get("kind", "")),
            str(x.get("legal_entity") or "—"),
            str(x.get("status", "")),
            f"{x.get('occurrences', 1)} times",
            str(x.get("workflow_id") or "—"),
            str(x.get("error_message") or "")[:120],
        )
    console.print(table)
    console.print(f"{len(items)} exception(s)")


ExceptionArg = Annotated[int, typer.Argument(help="the exception's id (from `d2r exceptions list`)", min=1)]


@app.command()
def retry(exception_id: ExceptionArg, api: ApiOption = DEFAULT_API, token: TokenOption = "") -> None:
    """Ask the workflow waiting on an exception to try its step again (after the cause was
    fixed). It stays `retrying` until the step passes; if it fails again it is open again."""
    done = Api(api, token).post(f"/v1/exceptions/{exception_id}/retry")
    console.print(f"exception {done['id']} ({done['kind']}): {done['status']} — {done.get('workflow_id') or ''}")


@app.command()
def resolve(
    exception_id: ExceptionArg,
    note: Annotated[str | None, typer.Option("--note", "-m", help="what was done (kept with it)")] = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = "",
) -> None:
    """Mark an exception resolved by hand (nothing is retried), e.g. one fixed outside d2r."""
    done = Api(api, token).post(f"/v1/exceptions/{exception_id}/resolve", {"note": note} if note else {})
    console.print(f"exception {done['id']} ({done['kind']}): {done['status']} by {done.get('resolved_by') or '?'}")
