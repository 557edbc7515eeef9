"""A network namespace of the harness's own for a process that listens on every interface: inside it
the only interface is loopback, so nothing outside this process tree can reach its listeners, and the
one port it must reach outside (the API server's) is bridged in through a Unix socket.

    argv = loopback_only(["karpenter"], bridge_socket, api_port)    # runs in its own namespace
    with UnixToTcp(bridge_socket, api_port):                         # the host's end of the bridge
        subprocess.Popen(argv)

``unshare --net --map-root-user`` makes the namespace (a user namespace too, so no privilege is needed
where unprivileged user namespaces are allowed); it lives as long as the process tree in it, so a
crash leaves nothing behind (a named ``ip netns`` would stay until deleted). Inside, this module's
``main`` brings loopback up, listens on ``127.0.0.1:<api_port>`` and forwards each connection to the
Unix socket, which ``UnixToTcp`` forwards to ``127.0.0.1:<api_port>`` outside: the kubeconfig's server
address is the same on both sides, and the API server's certificate stays valid.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_PR_SET_PDEATHSIG = 1


def loopback_only(command: list[str], bridge_socket: Path, port: int) -> list[str]:
    """``command`` run in a new network namespace whose only way out is ``127.0.0.1:port``."""
    return [
        "unshare",
        "--net",
        "--map-root-user",
        "--",
        sys.executable,
        "-m",
        "tools.e2e.operators.netns",
        "--bridge",
        f"{port}={bridge_socket}",
        "--",
        *command,
    ]


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _splice(accepted: socket.socket, connect: callable) -> None:
    try:
        upstream = connect()
    except OSError:
        accepted.close()
        return
    threading.Thread(target=_pump, args=(accepted, upstream), daemon=True).start()
    threading.Thread(target=_pump, args=(upstream, accepted), daemon=True).start()


class _Forwarder:
    """Accept on ``listener``, splice each connection to a new ``connect()`` in background threads."""

    def __init__(self, listener: socket.socket, connect: callable):
        self.listener = listener
        self.connect = connect
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted, _ = self.listener.accept()
                _splice(accepted, self.connect)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


class UnixToTcp:
    """The host's end of the bridge: ``bridge_socket`` forwarded to ``127.0.0.1:port``."""

    def __init__(self, bridge_socket: Path, port: int):
        self.path = bridge_socket
        self.port = port
        self._forwarder: _Forwarder | None = None

    def __enter__(self) -> UnixToTcp:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(64)
        self._forwarder = _Forwarder(listener, lambda: socket.create_connection(("127.0.0.1", self.port)))
        self._forwarder.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None
        self.path.unlink(missing_ok=True)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b"\0" * 14))


def interfaces() -> list[str]:
    """The network interfaces of the calling process's namespace."""
    return sorted(name for _index, name in socket.if_nameindex())


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="inside the namespace: loopback up, the bridge, the command")
    parser.add_argument("--bridge", required=True, metavar="PORT=SOCKET")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    port, _, path = args.bridge.partition("=")
    _loopback_up()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(64)

    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return sock

    _Forwarder(listener, connect).start()
    print(f"network namespace: interfaces {interfaces()}; bridge 127.0.0.1:{port} -> {path}", flush=True)
    child = subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: PLW1509 - prctl only
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda sig, _frame: child.send_signal(sig))
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
