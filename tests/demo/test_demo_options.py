"""`halo-stripe demo` rejects bad options before it touches anything."""

from __future__ import annotations

import socket

import pytest

from halo_stripe_pipeline import cli


def test_demo_command_rejects_small_count(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["demo", "--customers", "5"])

    assert status == 2
    assert "--customers must be at least" in capsys.readouterr().err


def test_demo_command_rejects_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        status = cli.main(["demo", "--port", str(port)])

    assert status == 2
    assert f"port {port} is already in use" in capsys.readouterr().err
