"""Requests/s of each simulator, each started as its own process on a free loopback port.

    .venv/bin/python bench/bench_simulators.py [--duration 5] [--concurrency 16]
        [--seed demo|bench] [--opportunities N] [--time-entries N]

A lean keep-alive HTTP/1.1 client (asyncio streams) drives the server so the figures
measure the simulator rather than the client. Reads are GET-by-id (plus a SOQL /
SuiteQL by-key query); writes are creates that commit to SQLite.

Requests/s on a shared 2-core box swing with whatever else runs; the server's own CPU time
per request (from /proc, Linux) moves far less, so both are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from simulators.devkeys import ensure_dev_keys  # noqa: E402

CREDS = "grant_type=client_credentials&client_id=d2r-dev&client_secret=d2r-dev-secret"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(module: str, port: int, db: str, extra: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--db", db, "--quiet", *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"{module} exited: {err}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    raise RuntimeError(f"{module} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (NaN where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def netsuite_login(url: str) -> str:
    """NetSuite M2M: a client assertion signed with the dev certificate's key."""
    keys = ensure_dev_keys(ROOT / ".d2r" / "keys")
    now = int(time.time())
    claims = {"iss": "d2r-dev", "scope": "rest_webservices", "aud": url, "iat": now, "exp": now + 300}
    assertion = jwt.encode(claims, keys.private_key.read_text(), algorithm="PS256", headers={"kid": keys.key_id})
    return urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    )


def token(url: str) -> str:
    form = netsuite_login(url) if url.endswith("/oauth2/v1/token") else CREDS
    req = urllib.request.Request(
        url, data=form.encode(), method="POST", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(req) as r:
        return str(json.load(r)["access_token"])


Factory = Callable[[str], Callable[[int], bytes]]


def fixed(method: str, path: str, body: bytes = b"") -> Factory:
    def factory(tok: str) -> Callable[[int], bytes]:
        req = raw(method, path, tok, body)
        return lambda i: req

    return factory


def varying(method: str, path: Callable[[int], str], body: Callable[[int], Any]) -> Factory:
    def factory(tok: str) -> Callable[[int], bytes]:
        return lambda i: raw(method, path(i), tok, json.dumps(body(i)).encode())

    return factory


def raw(method: str, path: str, tok: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {tok}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def load(
    port: int, make: Callable[[int], bytes], duration: float, concurrency: int
) -> tuple[int, int, dict[int, int]]:
    """Run `concurrency` keep-alive connections for `duration` s; return (ok, total, codes)."""
    deadline = time.perf_counter() + duration
    codes: dict[int, int] = {}
    seq = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                seq[0] += 1
                writer.write(make(seq[0]))
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                codes[status] = codes.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    total = sum(codes.values())
    ok = sum(v for k, v in codes.items() if k < 300)
    return ok, total, codes


def bench_one(
    name: str,
    module: str,
    extra: list[str],
    token_path: str,
    cases: list[tuple[str, Factory]],
    duration: float,
    concurrency: int,
) -> list[tuple[str, str, float, float, dict[int, int]]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        proc = start(module, port, os.path.join(d, f"{name}.sqlite"), extra)
        started = time.time() - t0
        try:
            tok = token(f"http://127.0.0.1:{port}{token_path}")
            out = []
            for label, factory in cases:
                make = factory(tok)
                asyncio.run(load(port, make, 0.5, concurrency))  # warm-up
                cpu0 = cpu_seconds(proc.pid)
                ok, total, codes = asyncio.run(load(port, make, duration, concurrency))
                cpu_us = (cpu_seconds(proc.pid) - cpu0) / max(1, total) * 1e6
                out.append((name, label, ok / duration, cpu_us, codes))
            print(f"  ({name} started and seeded in {started:.1f}s)", flush=True)
            return out
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seed", default="demo")
    p.add_argument("--opportunities", type=int, default=10000)
    p.add_argument("--time-entries", type=int, default=100000)
    a = p.parse_args()
    seed = ["--seed", a.seed]
    if a.seed == "bench":
        seed += ["--opportunities", str(a.opportunities), "--time-entries", str(a.time_entries)]
    v = "/services/data/v61.0"
    opp = "006Dd0000000001IAA"
    soql = urllib.parse.quote(f"SELECT Id, Name, StageName, Account.Name FROM Opportunity WHERE Id = '{opp}'")
    suiteql = json.dumps({"q": "SELECT id, periodname FROM accountingperiod WHERE periodname = 'Nov 2026'"}).encode()
    sf_cases: list[tuple[str, Factory]] = [
        ("read  GET sobjects/Opportunity/<id>", fixed("GET", f"{v}/sobjects/Opportunity/{opp}")),
        ("read  SOQL by Id with Account.Name", fixed("GET", f"{v}/query?q={soql}")),
        (
            "write POST sobjects/Account",
            varying("POST", lambda i: f"{v}/sobjects/Account", lambda i: {"Name": f"Bench {i}"}),
        ),
        (
            "write PATCH upsert Account/D2R_Customer_Key__c",
            varying(
                "PATCH",
                lambda i: f"{v}/sobjects/Account/D2R_Customer_Key__c/bench-{i}",
                lambda i: {"Name": f"Upsert {i}", "Industry": "Bench"},
            ),
        ),
    ]
    rec = "/services/rest/record/v1"
    ns_cases: list[tuple[str, Factory]] = [
        ("read  GET record/v1/subsidiary/1", fixed("GET", f"{rec}/subsidiary/1")),
        (
            "read  SuiteQL accountingperiod by name",
            fixed("POST", "/services/rest/query/v1/suiteql?limit=10", suiteql),
        ),
        (
            "write POST record/v1/customer",
            varying(
                "POST",
                lambda i: f"{rec}/customer",
                lambda i: {"companyName": f"Bench {i}", "subsidiary": {"id": "1"}},
            ),
        ),
        (
            "write PUT record/v1/customer/eid:<x> upsert",
            varying(
                "PUT",
                lambda i: f"{rec}/customer/eid:bench-{i}",
                lambda i: {"companyName": f"Bench {i}", "subsidiary": {"externalId": "US01"}},
            ),
        ),
    ]
    print(
        f"simulator benchmark: {a.duration:.0f}s per case, {a.concurrency} keep-alive "
        f"connections, seed={a.seed}, {os.cpu_count()} CPUs",
        flush=True,
    )
    rows = bench_one(
        "salesforce", "simulators.salesforce", seed, "/services/oauth2/token", sf_cases, a.duration, a.concurrency
    )
    rows += bench_one(
        "netsuite",
        "simulators.netsuite",
        seed,
        "/services/rest/auth/oauth2/v1/token",
        ns_cases,
        a.duration,
        a.concurrency,
    )
    for sim, label, rps, cpu_us, codes in rows:
        print(f"{sim:10s} {label:48s} {rps:8.0f} req/s {cpu_us:6.0f} us CPU/req   statuses {codes}")


if __name__ == "__main__":
    main()
