"""Serve a simulator with uvicorn (httptools + uvloop) and the shared command line.

The one addition to uvicorn is a scope extension that lets the "response lost" fault drop
the connection without any response (ASGI has no message for that)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ._app import ABORT_EXTENSION, BaseSimulator
from ._settings import SimSettings

# Real vendors' load balancers keep idle connections far longer than uvicorn's 5 s default;
# a short timeout would race clients' pooled connections (RemoteProtocolError on reuse).
KEEP_ALIVE_S = 75


class AbortableHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, exposing `transport.abort` to the app per request."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.scope is not None and "method" in self.scope:
            # the request's task is created but not yet started: it sees this entry
            self.scope.setdefault("extensions", {})[ABORT_EXTENSION] = {"abort": self.transport.abort}


def serve(app: BaseSimulator, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's lifespan runs the app's startup/shutdown)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=AbortableHttpTools,
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
        backlog=1024,
        proxy_headers=False,  # loopback clients: no X-Forwarded-* parsing per request
        server_header=False,  # vendors do not announce uvicorn
        ssl_certfile=app.settings.tls_certfile,
        ssl_keyfile=app.settings.tls_keyfile,
    )


def cli(
    prog: str,
    create: Callable[[SimSettings], BaseSimulator],
    default_port: int,
    default_db: str,
    argv: list[str] | None = None,
) -> None:
    """Parse the common command line, build the app and serve it."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int)
    p.add_argument("--db", help=f"SQLite file (default {default_db})")
    p.add_argument("--seed", help="demo | none | bench")
    p.add_argument("--opportunities", type=int, help="bench seed size")
    p.add_argument("--time-entries", type=int, help="bench seed size")
    p.add_argument("--instance", help="instance name (several NetSuite instances)")
    p.add_argument("--subsidiaries", help="NetSuite: legal entities to seed, e.g. US01,UK01")
    p.add_argument("--token-ttl", type=float)
    p.add_argument("--page-size", type=int)
    p.add_argument("--daily-limit", type=int)
    p.add_argument("--webhook-url")
    p.add_argument("--webhook-secret")
    p.add_argument("--public-url")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve https")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--jwt-certificate", help="PEM certificate that signed token JWTs are verified against")
    p.add_argument("--faults", help='JSON, e.g. \'{"latency_ms": 50, "error_rate": 0.1}\'')
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    over: dict[str, Any] = {}
    for k, sk in (
        ("host", "host"), ("port", "port"), ("db", "db"), ("seed", "seed"),
        ("opportunities", "seed_opportunities"), ("time_entries", "seed_time_entries"),
        ("instance", "instance"), ("subsidiaries", "subsidiaries"), ("token_ttl", "token_ttl"),
        ("page_size", "page_size"), ("daily_limit", "daily_limit"),
        ("webhook_url", "webhook_url"), ("webhook_secret", "webhook_secret"),
        ("public_url", "public_url"), ("jwt_certificate", "jwt_certificate"),
        ("tls_cert", "tls_certfile"), ("tls_key", "tls_keyfile"),
    ):  # fmt: skip
        v = getattr(a, k)
        if v is not None:
            over[sk] = v
    if a.faults:
        over["faults"] = json.loads(a.faults)
    if a.quiet:
        over["quiet"] = True
    settings = SimSettings(**over)
    if "port" not in over and settings.port == 0:
        settings.port = default_port
    if "db" not in over and settings.db == ":memory:":
        settings.db = default_db.format(instance=settings.instance)
    app = create(settings)
    if not settings.quiet:
        print(
            f"{prog}: listening on {settings.base_url()} db={settings.db} instance={settings.instance}",
            flush=True,
        )
        print(f"{prog}: seed-info " + json.dumps(app.seed_info_cached, indent=None), flush=True)
    sys.stdout.flush()
    serve(app, settings.host, settings.port)
