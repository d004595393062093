"""One `halo-stripe demo` run shared by every demo test of the session.

The command runs in a subprocess against the session warehouse with
`--keep-running`, so its emulator stays up for the tests to count objects
in, and is interrupted (Ctrl-C) when the session ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from halo_stripe_pipeline.emulator import free_port
from tests.demo.demo_run import DEMO_CUSTOMERS, DEMO_SEED, DemoRun

READY_LINE = "The emulator keeps running"
# The demo takes under a minute, but a loaded machine can slow the dbt build a lot.
STARTUP_TIMEOUT_SECONDS = 600


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.fixture(scope="session")
def demo_run(warehouse_url: str, session_home: Path) -> Iterator[DemoRun]:
    port = free_port()
    stdout_path = session_home / "demo.stdout"
    stderr_path = session_home / "demo.stderr"
    command = [
        sys.executable, "-m", "halo_stripe_pipeline.cli", "demo",
        "--customers", str(DEMO_CUSTOMERS), "--seed", str(DEMO_SEED),
        "--port", str(port), "--keep-running",
    ]
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=dict(os.environ))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while READY_LINE not in _read(stdout_path):
            if process.poll() is not None:
                pytest.fail(
                    f"halo-stripe demo exited with {process.returncode}:\n"
                    f"{_read(stdout_path)}\n{_read(stderr_path)[-4000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"halo-stripe demo did not finish:\n{_read(stdout_path)}")
            time.sleep(0.2)
        guide = json.loads((session_home / "demo" / "sample-companies.json").read_text())
        yield DemoRun(f"http://127.0.0.1:{port}", _read(stdout_path), guide)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
