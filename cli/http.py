"""How every API command talks to d2r: one httpx client with the user's bearer token, and
the API's problem+json answers turned into a one-line error and a non-zero exit."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

DEFAULT_API = "http://127.0.0.1:8000"

ApiOption = Annotated[str, typer.Option("--api", envvar="D2R_API_URL", help="the d2r API's base URL")]
TokenOption = Annotated[
    str,
    typer.Option("--token", envvar="D2R_TOKEN", help="your bearer token (`d2r token` mints one for make run)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the API's JSON answer instead of a table")]

console = Console()
errors = Console(stderr=True)


class Api:
    """The d2r API for one user: `get`/`post` return the decoded JSON or exit with the problem."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        if not token:
            errors.print("no token: pass --token or set D2R_TOKEN (`d2r token --role <role>` mints one)")
            raise typer.Exit(2)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def get(self, path: str, missing_ok: bool = False, **params: Any) -> Any:
        """The JSON answer; with `missing_ok`, None instead of an exit for a 404 (not there yet)
        or a 503 (a workflow that did not answer in time, e.g. on a busy worker)."""
        clean = {k: v for k, v in params.items() if v is not None}
        response = self._call("GET", path, params=clean)
        if missing_ok and response.status_code in (404, 503):
            return None
        return self._answer(response)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._answer(self._call("POST", path, json=body if body is not None else {}))

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            errors.print(f"cannot reach the API at {self._http.base_url}: {exc}")
            raise typer.Exit(3) from exc

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        if response.is_success:
            return response.json() if response.content else None
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text[:500]}
        title = problem.get("title", response.reason_phrase) if isinstance(problem, dict) else response.reason_phrase
        detail = problem.get("detail", "") if isinstance(problem, dict) else str(problem)
        errors.print(f"[red]{response.status_code} {title}[/red]: {detail}", markup=True, highlight=False)
        raise typer.Exit(1)


def money(amounts: dict[str, Any] | None) -> str:
    """`{"GBP": "1200.00"}` → `GBP 1200.00` (several currencies on one line)."""
    if not amounts:
        return "—"
    return ", ".join(f"{currency} {amount}" for currency, amount in sorted(amounts.items()))
