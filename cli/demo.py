"""`d2r demo month-end`: the demo firm's month-end against `make run`, drawn live — deals
booked, time recorded, each legal entity's close step by step, then the controller's checks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.http import DEFAULT_API, ApiOption, console, errors
from workers import demo_month_end as demo

app = typer.Typer(help="Demonstrations against the running `make run` stack.", no_args_is_help=True)

PHASES = {"book": "book the deals", "time": "record time", "close": "close", "check": "check", "done": "result"}


class Board:
    """What the demo said so far: the latest line per phase and subject (every check line)."""

    def __init__(self, period: str) -> None:
        self.period = period
        self.rows: dict[tuple[str, str], list[str]] = {}
        self.phase = "book"

    def say(self, phase: str, subject: str, text: str) -> None:
        self.phase = phase
        lines = self.rows.setdefault((phase, subject), [])
        if phase == "book":  # one line per deal: where it stands
            lines[:] = [text]
        elif not lines or lines[-1] != text:
            lines.append(text)

    def render(self) -> Group:
        order = list(PHASES)
        current = order.index(self.phase) if self.phase in order else 0
        steps = Text()
        for i, name in enumerate(PHASES.values()):
            done = i < current or self.phase == "done"
            steps.append(
                ("✔ " if done else "• ") + name, style="green" if done else "bold yellow" if i == current else "dim"
            )
            steps.append("  ")
        table = Table("phase", "what", "status", show_lines=False, expand=False)
        for (phase, subject), lines in self.rows.items():
            for i, line in enumerate(lines[-6:]):
                table.add_row(PHASES.get(phase, phase) if i == 0 else "", subject if i == 0 else "", line)
        return Group(Text(f"demo month-end {self.period}", style="bold"), steps, table)


@app.command("month-end")
def month_end(
    period: Annotated[str, typer.Option(help="the month to close, e.g. 2026-10")] = demo.last_month(),
    entity: Annotated[
        list[str] | None, typer.Option("--legal-entity", "-e", help="only this entity's deals (repeatable)")
    ] = None,
    api: ApiOption = DEFAULT_API,
    crm: Annotated[str, typer.Option(envvar="D2R_SALESFORCE__URL", help="the CRM (Salesforce sim)")] = demo.SF,
    netsuite: Annotated[str, typer.Option(envvar="D2R_DEMO_NETSUITE_URL", help="the NetSuite sim")] = demo.NS,
    d365: Annotated[str, typer.Option(envvar="D2R_DEMO_D365_URL", help="the Dynamics 365 sim")] = demo.D365,
    kantata: Annotated[str, typer.Option(envvar="D2R_DEMO_KANTATA_URL", help="the Kantata sim")] = demo.KT,
    key_file: Annotated[Path | None, typer.Option(help="the dev issuer's key (default .d2r/dev-issuer)")] = None,
    issuer: Annotated[str | None, typer.Option(envvar="D2R_OIDC_ISSUER", help="default <api>/dev-issuer")] = None,
) -> None:
    """Book the seeded deals, record two weeks of approved time (in each entity's PSA: Certinia,
    or Kantata for DE01), close the month per legal entity (started by integration admin, lock
    approved by finance: four eyes) and check reconciliation and billed revenue against each
    ERP. Exit 1 when a check differs.

    Example: `d2r demo month-end --period 2026-10` (or `-e JP01` for one entity)."""
    board = Board(period)
    with Live(board.render(), console=console, refresh_per_second=4, transient=False) as live:

        def say(phase: str, subject: str, text: str) -> None:
            board.say(phase, subject, text)
            live.update(board.render())

        target = demo.Target(
            api=api.rstrip("/"),
            crm=crm.rstrip("/"),
            netsuite=netsuite.rstrip("/"),
            d365=d365.rstrip("/"),
            kantata=kantata.rstrip("/"),
            key_file=key_file,
            issuer=issuer,
            entities=frozenset(e.upper() for e in entity) if entity else None,
            progress=say,
        )
        try:
            clean = asyncio.run(demo.run(period, target))
        except demo.DemoFailed as failed:
            errors.print(f"[red]demo stopped[/red]: {failed}")
            raise typer.Exit(1) from failed
    if not clean:
        raise typer.Exit(1)
