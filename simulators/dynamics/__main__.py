"""Command line: `python -m simulators.dynamics --port 8303 --db .d2r/sim/dynamics.sqlite --seed demo`."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import uvicorn

from .app import Lost, create_app
from .settings import DynamicsSettings


class _QuietLost(logging.Filter):
    """A simulated lost response is on purpose; keep its traceback out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Lost))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="simulators.dynamics")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--db", help="SQLite file (default .d2r/sim/dynamics.sqlite)")
    p.add_argument("--seed", help="demo | none")
    p.add_argument("--companies", help="dataAreaIds, the first is the default company (default uk01,ie01)")
    p.add_argument("--tenant")
    p.add_argument("--resource", help="environment URL tokens are issued for (default: the public URL)")
    p.add_argument("--token-ttl", type=float)
    p.add_argument("--page-size", type=int)
    p.add_argument("--public-url")
    p.add_argument("--faults", help="JSON, e.g. '{\"throttle_rate\": 0.1}'")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--tls-cert", dest="tls_certfile", help="PEM certificate chain: serve https")
    p.add_argument("--tls-key", dest="tls_keyfile", help="PEM private key of --tls-cert")
    a = p.parse_args(argv)
    over: dict[str, Any] = {k: v for k, v in vars(a).items() if v is not None and k not in ("faults", "quiet")}
    if a.faults:
        over["faults"] = json.loads(a.faults)
    if a.quiet:
        over["quiet"] = True
    settings = DynamicsSettings(**over)
    if settings.port == 0:
        settings.port = 8303
    if settings.db == ":memory:":
        settings.db = ".d2r/sim/dynamics.sqlite"
    settings.drop_lost_responses = True
    app = create_app(settings)
    if not settings.quiet:
        print(f"simulators.dynamics: listening on {settings.base_url()} db={settings.db}", flush=True)
        print("simulators.dynamics: seed-info " + json.dumps(app.seed_info_cached), flush=True)
    logging.getLogger("uvicorn.error").addFilter(_QuietLost())
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="warning",
        lifespan="on",
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )


if __name__ == "__main__":
    main()
