"""`python -m simulators.kantata [--port 8304] [--db FILE] [--seed demo|none] [--faults JSON]`."""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn

from .._serve import KEEP_ALIVE_S, AbortableHttpTools
from .app import KantataSettings, create_app

DEFAULT_PORT = 8304
DEFAULT_DB = ".d2r/sim/kantata.sqlite"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="simulators.kantata")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--db", help=f"SQLite file (default {DEFAULT_DB})")
    p.add_argument("--seed", help="demo | none")
    p.add_argument("--token-ttl", type=float)
    p.add_argument("--request-timeout", type=float, help="seconds before a request is answered 504 (default 180)")
    p.add_argument("--faults", help="JSON, e.g. '{\"throttle_rate\": 0.1}'")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve https")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    a = p.parse_args(argv)
    over: dict[str, Any] = {}
    for arg, key in (("host", "host"), ("port", "port"), ("db", "db"), ("seed", "seed"),
                     ("token_ttl", "token_ttl"), ("request_timeout", "request_timeout_s"),
                     ("tls_cert", "tls_certfile"), ("tls_key", "tls_keyfile")):  # fmt: skip
        if getattr(a, arg) is not None:
            over[key] = getattr(a, arg)
    if a.faults:
        over["faults"] = json.loads(a.faults)
    if a.quiet:
        over["quiet"] = True
    settings = KantataSettings(**over)
    if "port" not in over and settings.port == 0:
        settings.port = DEFAULT_PORT
    if "db" not in over and settings.db == ":memory:":
        settings.db = DEFAULT_DB
    if "seed" not in over and settings.seed == "none":
        settings.seed = "demo"
    app = create_app(settings)
    if not settings.quiet:
        print(f"simulators.kantata: listening on {settings.base_url()} db={settings.db}", flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=AbortableHttpTools,  # the shared base's protocol: a lost response really drops the connection
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
        server_header=False,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )


if __name__ == "__main__":
    main()
