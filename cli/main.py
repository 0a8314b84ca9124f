"""The `d2r` command. `d2r token` mints a dev-issuer token for `make run`; `engagements`,
`close`, `exceptions` and `stuck` talk to the API with the user's token (--token / D2R_TOKEN);
`demo month-end` runs the demo firm's month-end against `make run`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli import close, demo, engagements, exceptions, stuck
from security import dev_issuer

ROOT = Path(__file__).resolve().parent.parent
ROLES = ["sales_ops", "delivery_ops", "finance", "integration_admin", "auditor"]

app = typer.Typer(help="d2r — deal to revenue", no_args_is_help=True, add_completion=False)
app.add_typer(engagements.app, name="engagements")
app.add_typer(close.app, name="close")
app.add_typer(exceptions.app, name="exceptions")
app.add_typer(demo.app, name="demo")
app.command("stuck")(stuck.stuck)


@app.callback()
def main() -> None:
    """d2r's command line."""


def _default_key() -> Path:
    state = Path(os.environ.get("D2R_STATE_DIR", ROOT / ".d2r"))
    return Path(os.environ.get("D2R_DEV_ISSUER_KEY_FILE", state / "dev-issuer" / "key.pem"))


@app.command()
def token(
    role: Annotated[list[str], typer.Option("--role", "-r", help=f"one of {', '.join(ROLES)} (repeatable)")],
    entities: Annotated[
        str, typer.Option("--entities", "-e", help="legal entities in scope, comma-separated; * = all")
    ] = "*",
    subject: Annotated[str | None, typer.Option("--subject", "-s", help="who (default: dev-<role>)")] = None,
    ttl: Annotated[int, typer.Option(help="lifetime in seconds")] = dev_issuer.DEFAULT_TTL_SECONDS,
    key_file: Annotated[Path | None, typer.Option(help="the dev issuer's private key")] = None,
    issuer: Annotated[str, typer.Option(envvar="D2R_OIDC_ISSUER")] = "http://127.0.0.1:8000/dev-issuer",
    audience: Annotated[str, typer.Option(envvar="D2R_OIDC_AUDIENCE")] = dev_issuer.DEV_AUDIENCE,
) -> None:
    """Mint a bearer token from the dev issuer of `make run` (prints it, nothing else)."""
    unknown = sorted(set(role) - set(ROLES))
    if unknown:
        raise typer.BadParameter(f"unknown roles {unknown}; choose from {ROLES}", param_hint="--role")
    key = key_file or _default_key()
    if not key.exists():
        typer.echo(f"no dev issuer key at {key}: start `make run` once (it creates it)", err=True)
        raise typer.Exit(2)
    scope = [e.strip().upper() if e.strip() != "*" else "*" for e in entities.split(",") if e.strip()]
    typer.echo(
        dev_issuer.mint(
            key,
            issuer,
            subject=subject or f"dev-{role[0].replace('_', '-')}",
            roles=list(role),
            entities=scope,
            audience=audience,
            ttl_seconds=ttl,
        )
    )


if __name__ == "__main__":
    app()
