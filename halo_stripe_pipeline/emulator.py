"""Run the `localstripe` Stripe emulator on a loopback port, in memory only.

localstripe itself listens on every interface and pickles its whole store to
`/tmp/localstripe.pickle` after each write, which is slow for a large sample
account and lets two emulators overwrite each other's state. This launcher
binds 127.0.0.1 and keeps the store in memory.

    python -m halo_stripe_pipeline.emulator --port 8420
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def serve(host: str, port: int) -> None:
    from aiohttp import web
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    web.run_app(server.app, host=host, port=port, access_log=None, print=None)


@dataclass
class EmulatorProcess:
    """A localstripe subprocess; `api_base` is what `STRIPE_API_BASE` takes."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register_webhook(self, name: str, url: str, secret: str, events: list[str] | None = None) -> None:
        """Make the emulator sign and POST its events to `url`."""
        data: dict[str, object] = {"url": url, "secret": secret}
        if events:
            data["events"] = events
        response = httpx.post(f"{self.api_base}/_config/webhooks/{name}", data=data)  # type: ignore[arg-type]
        response.raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_emulator(port: int | None = None, timeout: float = 20.0) -> EmulatorProcess:
    """Start localstripe in a subprocess and wait until it accepts requests."""
    if port is None:
        port = free_port()
    elif not _port_is_free(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is already in use; pick another port for localstripe")
    process = subprocess.Popen(
        [sys.executable, "-m", "halo_stripe_pipeline.emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    emulator = EmulatorProcess(process=process, port=port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"localstripe exited with code {process.returncode}: {stderr}")
        try:
            httpx.get(f"{emulator.api_base}/v1/customers", auth=("sk_test_probe", ""), timeout=1)
            return emulator
        except httpx.TransportError:
            time.sleep(0.1)
    emulator.stop()
    raise RuntimeError(f"localstripe did not respond on port {port} within {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
