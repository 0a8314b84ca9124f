"""The README runs as written: every `sh` block after "The two commands", in order, in one
shell, against a fresh `make run` stack (`python -m workers.devstack` with a new state dir).

The blocks are literal: ids come from shell variables the earlier blocks set. The only
substitution is the address: this stack runs with every port moved by D2R_PORT_OFFSET (so it
runs beside a developer's own `make run` and other test runs), so `127.0.0.1:<port>` becomes
`127.0.0.1:<port + offset>`, and the tools' own defaults (the `temporal` CLI's address, `d2r`'s
API and token issuer) are pointed at it. Each block must succeed: any command that fails
stops the run, and `curl` answers an HTTP error with a failure (`--fail-with-body`), except
where the README itself asks curl for the status code (`-w`), which it does to show a refusal.

Marked `readme` (and `integration`); `-m "not readme"` leaves it out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.readme]

# make run's ports (workers/devstack.py); each moves by the offset
PORTS = (7233, 8233, 8000, 8301, 8302, 8303, 8304)
BLOCK = re.compile(r"^(?:<!-- readme-test: skip \((?P<skip>[^)]*)\) -->\n)?```sh\n(?P<body>.*?)^```", re.S | re.M)

PRELUDE = r"""
set -euo pipefail
# An HTTP error fails the block, unless the command prints the status code itself (-w).
curl() {
  case " $* " in
    *" -w "*|*" --write-out "*) command curl --max-time 120 "$@" ;;
    *) command curl --max-time 120 --fail-with-body "$@" ;;
  esac
}
trap 'echo "README block $README_BLOCK failed (line $LINENO): $BASH_COMMAND" >&2' ERR
"""


def readme_blocks(text: str) -> list[tuple[str, str | None]]:
    """The walkthrough's shell blocks, in order, each with the reason it is skipped (None: it
    runs): every `sh` block after the one that starts `make run` (the test starts the stack
    itself). A block is skipped only where the README says so, in a comment that gives why."""
    blocks = [(m["body"], m["skip"]) for m in BLOCK.finditer(text)]
    first = next(i for i, (body, _) in enumerate(blocks) if body.lstrip().startswith("make run"))
    return blocks[first + 1 :]


def moved(block: str, offset: int) -> str:
    for port in PORTS:
        block = block.replace(f"127.0.0.1:{port}", f"127.0.0.1:{port + offset}")
    return block


def free_offset() -> int:
    """An offset at which every port of the stack is free."""
    for offset in range(20000, 40000, 97):
        if all(_free(port + offset) for port in PORTS):
            return offset
    raise RuntimeError("no free port offset")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


PLACEHOLDER = re.compile(r"<[a-z ]*id>")


def test_readme_blocks_are_literal_commands() -> None:
    blocks = readme_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 8 and "d2r token" in blocks[0][0]
    for body, _ in blocks:
        for line in body.splitlines():
            code = line.split(" # ")[0]
            assert not PLACEHOLDER.search(code), f"a placeholder, not a shell variable set earlier: {line}"


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, dict[str, str]]]:
    if shutil.which("curl") is None:
        pytest.fail("the README uses curl: install it (`apt-get install -y curl`; `make test` does)")
    offset = free_offset()
    state = tmp_path_factory.mktemp("readme-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith("D2R_") and not k.startswith("TEMPORAL_")}
    # PYTHONPATH: `.venv/bin/d2r` and every process run this checkout's code, whichever one
    # the virtualenv was installed from
    env.update(
        {"D2R_STATE_DIR": str(state), "D2R_PORT_OFFSET": str(offset), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    )
    log = state / "make-run.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.devstack"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while "d2r is running" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make run did not come up:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
        api = f"http://127.0.0.1:{8000 + offset}"
        shell_env = {
            **env,
            "D2R_API_URL": api,
            "D2R_OIDC_ISSUER": f"{api}/dev-issuer",
            "D2R_UI_BASE_URL": f"http://127.0.0.1:{8233 + offset}",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{7233 + offset}",
        }
        yield offset, state, shell_env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_every_readme_block_runs_in_order_on_a_fresh_make_run(
    fresh_stack: tuple[int, Path, dict[str, str]], tmp_path: Path
) -> None:
    offset, state, env = fresh_stack
    blocks = readme_blocks((ROOT / "README.md").read_text())
    script = [PRELUDE]
    skipped = []
    for number, (block, skip) in enumerate(blocks, 1):
        if skip:
            skipped.append(f"block {number}: {skip}")
            continue
        script += [f"README_BLOCK={number}", f'echo "::: README block {number}"', moved(block, offset)]
    script.append('echo "::: all README blocks ran"')
    # the README's engagement as the blocks left it (after its December run): for the check below
    view_file = tmp_path / "engagement.json"
    api = f"http://127.0.0.1:{8000 + offset}"
    script.append(f'curl -s {api}/v1/engagements/$OPP -H "Authorization: Bearer $AUDITOR" > {view_file}')
    path = tmp_path / "readme.sh"
    path.write_text("\n".join(script))
    started = time.monotonic()
    done = subprocess.run(["bash", str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    took = time.monotonic() - started
    output = done.stdout[-6000:] + "\n--- stderr ---\n" + done.stderr[-6000:]
    logs = state / "logs"
    worker = (logs / "worker.log").read_text(errors="replace")[-3000:] if (logs / "worker.log").exists() else ""
    assert done.returncode == 0, f"{output}\n--- worker.log (tail) ---\n{worker}"
    assert "::: all README blocks ran" in done.stdout
    # Its cost-to-cost line carries the CRM's estimate at completion, so its revenue was
    # computable in November and December (the README says so)
    view = json.loads(view_file.read_text())
    assert "revenue_not_computable" not in [x["code"] for x in view["exceptions"]], view["exceptions"]
    # The stack's business events were written apart from worker.log, as make run says.
    events = (logs / "events.jsonl").read_text().splitlines()
    assert events and all(line.startswith('{"ts": ') for line in events)
    # make run said how to read the encrypted payloads in the Web UI: where and which setting.
    hint = " ".join((state / "make-run.log").read_text(errors="replace").split())
    codec = f"http://127.0.0.1:{8000 + offset}/codec"
    assert f"open a codec session: {codec}/session" in hint, hint[-3000:]
    assert '"Configure Codec Server" (top bar): choose "Use my browser setting and ignore Cluster-level' in hint
    assert f'browser endpoint {codec}, tick "Include cross-origin credentials"' in hint
    print(f"{len(blocks) - len(skipped)} README blocks ran in {took:.0f} s; skipped as the README says: {skipped}")
