"""The localstripe launcher."""


def test_emulator_rejects_busy_port():
    import socket

    import pytest

    from halo_stripe_pipeline.emulator import start_emulator

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"port {port} on 127.0.0.1 is already in use"):
            start_emulator(port)
