"""A TCP relay on 127.0.0.1 in front of one loopback service, which a fault scenario can cut.

The real external-secrets operator reads Secrets Manager through it: ``cut()`` closes the listener and
every open connection, so the operator's calls fail as a refused connection (an endpoint gone, as when
AWS is unreachable from the cluster) while the harness, the provider plugin and moto itself keep their
own direct path; ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class LoopbackProxy:
    """Relays ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>`` until cut; stopped at the end of the
    ``with`` block, also on failure."""

    def __init__(self, target_port: int, description: str):
        self.target_port = target_port
        self.description = description
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackProxy:
        self._listen()
        return self

    def __exit__(self, *exc) -> None:
        self.cut()

    def cut(self) -> None:
        """Stop listening and drop every relayed connection: the next connect is refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        for s in ([listener] if listener else []) + list(sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        """Listen again, on the same port."""
        with self._lock:
            if self._listener is not None:
                return
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._open |= {client, upstream}
            remaining = [2]  # the two directions of this connection; the last one closes both
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pipe, args=(source, sink, (client, upstream), remaining), daemon=True
                ).start()

    def _pipe(
        self,
        source: socket.socket,
        sink: socket.socket,
        pair: tuple[socket.socket, socket.socket],
        remaining: list[int],
    ) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with self._lock:
            remaining[0] -= 1
            last = remaining[0] == 0
            if last:
                self._open -= set(pair)
        if last:
            for s in pair:
                s.close()
