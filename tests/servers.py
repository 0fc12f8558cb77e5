"""Real servers on 127.0.0.1 for the object-store tests and benchmarks (moto's S3, the GCS emulator)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: list[str], log, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:  # noqa: ANN001
    """`python -m <args>` (each `{port}` filled with a free port of 127.0.0.1), once it accepts connections; and its URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", *(a.format(port=port) for a in args)], env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"
