"""`d2r stuck`: the engagements that need someone — a failing workflow task (a bug), a deal
that needs attention, or an approval nobody has decided — with why, and where to look."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli.http import DEFAULT_API, Api, ApiOption, JsonOption, TokenOption, console

UiOption = Annotated[str, typer.Option("--ui", envvar="D2R_UI_BASE_URL", help="the Temporal Web UI, for the links")]


def rows(found: Any) -> list[dict[str, Any]]:
    """The list endpoint's rows (a plain list, or a page with `items`)."""
    items = found.get("items", []) if isinstance(found, dict) else found
    return list(items or [])


def stuck(
    legal_entity: Annotated[str | None, typer.Option("--legal-entity", "-e", help="e.g. UK01")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    links: Annotated[bool, typer.Option("--links", help="add the API and Web UI address of each")] = False,
    as_json: JsonOption = False,
    api: ApiOption = DEFAULT_API,
    ui: UiOption = "http://127.0.0.1:8233",
    namespace: Annotated[str, typer.Option(envvar="D2R_TEMPORAL_NAMESPACE")] = "default",
    token: TokenOption = "",
) -> None:
    """Stuck engagements and why: a failing task, a deal that needs attention, an open approval.

    Example: `d2r stuck -e UK01 --links`. Then fix the cause and `d2r engagements retry <id>`,
    decide with `d2r engagements approve|reject`, or `d2r engagements cancel`."""
    found = rows(Api(api, token).get("/v1/engagements", problem="true", legal_entity=legal_entity, limit=limit))
    for e in found:  # where to look: the engagement in the API, its history in the Web UI
        workflow_id = e.get("workflow_id") or ""
        e["api_href"] = f"{api.rstrip('/')}/v1/engagements/{e.get('opportunity_id') or workflow_id}"
        e["ui_href"] = f"{ui.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"
    if as_json:
        console.print_json(data=found)
        return
    table = Table("opportunity", "stage", "entity", "why")
    for e in found:
        table.add_row(
            e.get("opportunity_id") or e.get("workflow_id") or "",
            e.get("stage") or "—",
            e.get("legal_entity") or "—",
            e.get("problem") or "",
        )
    console.print(table)
    if links:
        for e in found:
            console.print(f"{e.get('opportunity_id')}: {e['api_href']}  {e['ui_href']}", soft_wrap=True)
    console.print(f"{len(found)} stuck engagement(s)")
