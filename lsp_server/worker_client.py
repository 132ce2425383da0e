"""A ``Denoiser`` that talks to the model worker (model/worker.py) over the msgpack protocol.

Unless an address is configured it starts the worker itself, on a unix socket in a private
temporary directory, and restarts it when it dies: a request in flight at that moment fails with
``WorkerError`` and the next one is served by the new worker. ``fill`` is thread-safe (the server
calls it from executor threads); a CancelToken set while waiting is forwarded as a ``cancel`` op.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Sequence

from infill.types import Cancelled, CancelToken, FillRequest, FillResult, InfillError
from model import protocol as P

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.02


class WorkerError(InfillError):
    """The worker could not be reached, died, or answered with an error."""


class ModelLoadError(WorkerError):
    """The worker is up but its model failed to load (wrong path, bad checkpoint): the user must act."""


class CanvasTooLongError(WorkerError):
    """The worker's model cannot fill a canvas this long (``infill.maxTokens`` is above what it fits)."""


@dataclass
class WorkerOptions:
    """Where the worker is and how to start it; mirrors ``settings.ModelSettings`` and ``WorkerSettings``."""

    model: str | None = None  # checkpoint dir; None = the shipped starter model
    device: str = "auto"
    dtype: str = "auto"
    address: str | None = None  # "unix:/path", "/path" or "tcp:HOST:PORT" / "HOST:PORT"; None = spawn one
    token: str | None = None
    threads: int = 0
    start_timeout_s: float = 60.0
    request_timeout_s: float = 120.0


EventCallback = Callable[[str, dict], None]
"""``on_event(kind, data)``: kind is ``progress`` (worker event), ``died``, ``start_failed``,
``failed_twice`` or ``refused`` (the model cannot honour a request: ``data["error"]`` says why)."""


class WorkerClient:
    """Implements ``infill.types.Denoiser`` by forwarding fills to a (possibly self-started) worker."""

    def __init__(self, options: WorkerOptions | None = None, on_event: EventCallback | None = None):
        self.options = options or WorkerOptions()
        self.on_event = on_event or (lambda kind, data: None)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()  # guards connect/restart and the fields below
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._tmpdir: str | None = None
        self._pending: dict[int, Future] = {}
        self._generation = 0  # bumps at every (re)connect so a dead reader cannot fail new requests
        self.state = "stopped"  # stopped | loading | ready | failed
        self.state_message = ""
        self.load_error: str | None = None
        self.ready = threading.Event()
        self.starts = 0  # worker processes started
        self.deaths = 0  # unexpected disconnects
        self.consecutive_failures = 0
        self.model_calls = 0  # total reported by the worker
        self.requests = 0
        self.closed = False

    # -------------------------------------------------- Denoiser

    def fill(self, requests: Sequence[FillRequest], cancel: CancelToken | None = None,
             deadline_ms: int | None = None, options: P.FillOptions | None = None) -> list[FillResult]:
        """Send one ``fill`` and wait for it; ``options`` change the worker's sampler settings for this
        call. Raises Cancelled, WorkerError, ModelLoadError or CanvasTooLongError."""
        if not requests:
            return []
        if cancel is not None:
            cancel.raise_if_cancelled()
        if deadline_ms is None and cancel is not None and cancel.deadline is not None:
            deadline_ms = max(1, int((cancel.deadline - time.monotonic()) * 1000))
        msg_id = next(self._ids)
        try:
            message = P.fill_message(msg_id, list(requests), deadline_ms, options)
        except P.ProtocolError as exc:  # e.g. related texts over the protocol's bound
            raise WorkerError(f"request refused before sending: {exc}") from exc
        future, generation = self._send(message)
        response = self._wait(future, msg_id, cancel)
        if not response["ok"]:
            if response.get("code") == P.CANCELLED:
                raise Cancelled()
            if response.get("code") == P.MODEL_FAILED:
                raise ModelLoadError(response["error"])
            if response.get("code") == P.CANVAS_TOO_LONG:
                self.on_event("refused", {"error": response["error"], "code": P.CANVAS_TOO_LONG})
                raise CanvasTooLongError(f"model worker: {response['error']}")
            raise WorkerError(f"model worker: {response['error']}")
        results = [P.result_from_wire(r) for r in response["results"]]
        with self._lock:
            self.consecutive_failures = 0
            self.requests += 1
            self.model_calls += sum(r.model_calls for r in results)
        return results

    def health(self, timeout: float = 10.0) -> dict:
        msg_id = next(self._ids)
        future, _ = self._send({"id": msg_id, "op": "health"})
        return self._wait(future, msg_id, None, timeout)

    # -------------------------------------------------- connection

    def start(self) -> None:
        """Connect now (spawning the worker if needed) instead of at the first fill."""
        with self._lock:
            self._ensure_connected()

    def _send(self, message: dict) -> tuple[Future, int]:
        with self._lock:
            if self.closed:
                raise WorkerError("worker client is closed")
            self._ensure_connected()
            future: Future = Future()
            self._pending[message["id"]] = future
            sock, generation = self._sock, self._generation
        try:
            data = P.encode_frame(message)
        except P.ProtocolError as exc:
            self._pending.pop(message["id"], None)
            raise WorkerError(f"request too large for the worker: {exc}") from exc
        try:
            with self._send_lock:
                sock.sendall(data)
        except OSError as exc:
            self._pending.pop(message["id"], None)
            self._connection_lost(generation, f"send failed: {exc}")
            raise WorkerError(f"model worker connection lost: {exc}") from exc
        return future, generation

    def _wait(self, future: Future, msg_id: int, cancel: CancelToken | None, timeout: float | None = None) -> dict:
        limit = time.monotonic() + (timeout or self.options.request_timeout_s)
        while True:
            try:
                return future.result(timeout=CANCEL_POLL_S)
            except TimeoutError:
                pass
            if cancel is not None and cancel.cancelled:
                self._pending.pop(msg_id, None)
                self._send_cancel(msg_id)
                raise Cancelled()
            if time.monotonic() > limit:
                self._pending.pop(msg_id, None)
                self._send_cancel(msg_id)
                raise WorkerError(f"model worker did not answer within {timeout or self.options.request_timeout_s:.0f}s")

    def _send_cancel(self, target: int) -> None:
        with self._lock:
            sock = self._sock
        if sock is None:
            return
        try:
            data = P.encode_frame({"id": next(self._ids), "op": "cancel", "target": target})
            with self._send_lock:
                sock.sendall(data)
        except OSError:
            pass  # the reader notices the dead connection

    def _ensure_connected(self) -> None:
        """(Re)connect, spawning the worker when no address is configured.  Caller holds ``_lock``."""
        if self._sock is not None:
            return
        try:
            if self.options.address:
                sock = self._connect(self.options.address, self.options.start_timeout_s)
            else:
                sock = self._spawn()
            self._handshake(sock)
        except WorkerError as exc:
            self.consecutive_failures += 1
            self.on_event("start_failed", {"error": str(exc), "failures": self.consecutive_failures})
            if self.consecutive_failures == 2:
                self.on_event("failed_twice", {"error": str(exc)})
            raise
        self._generation += 1
        self._sock = sock
        threading.Thread(target=self._reader, args=(sock, self._generation), name="infill-worker-reader",
                         daemon=True).start()

    def _spawn(self) -> socket.socket:
        self._stop_process()
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="infill-")  # 0700: only we can reach the socket
        path = os.path.join(self._tmpdir, "worker.sock")
        cmd = [sys.executable, "-m", "model.worker", "--socket", path, "--device", self.options.device,
               "--dtype", self.options.dtype, "--exit-with-parent", "--threads", str(self.options.threads)]
        if self.options.model:
            cmd += ["--model", self.options.model]
        env = dict(os.environ)
        log.info("starting model worker: %s", " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
        self.starts += 1
        deadline = time.monotonic() + self.options.start_timeout_s
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise WorkerError(f"model worker exited during start (exit code {code})")
            if os.path.exists(path):
                try:
                    return self._connect(f"unix:{path}", 2.0)
                except WorkerError:
                    pass
            time.sleep(0.05)
        self._stop_process()
        raise WorkerError(f"model worker did not start within {self.options.start_timeout_s:.0f}s")

    @staticmethod
    def _connect(address: str, timeout: float) -> socket.socket:
        try:
            if address.startswith("unix:") or address.startswith("/"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(address.removeprefix("unix:"))
            else:
                host, _, port = address.removeprefix("tcp:").rpartition(":")
                sock = socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout)
        except (OSError, ValueError) as exc:
            raise WorkerError(f"cannot connect to the model worker at {address}: {exc}") from exc
        sock.settimeout(None)
        return sock

    def _handshake(self, sock: socket.socket) -> None:
        """``hello`` first (the worker checks the token), reading events until the reply arrives."""
        try:
            sock.settimeout(self.options.start_timeout_s)
            P.write_frame(sock, {"id": 0, "op": "hello", "token": self.options.token, "version": P.PROTOCOL_VERSION})
            while True:
                msg = P.check_response(P.read_frame(sock))
                if msg.get("op") == "progress":
                    self._on_progress(msg)
                    continue
                if msg.get("id") == 0:
                    break
            sock.settimeout(None)
        except (OSError, P.ProtocolError) as exc:
            sock.close()
            raise WorkerError(f"model worker handshake failed: {exc}") from exc
        if not msg["ok"]:
            sock.close()
            raise WorkerError(f"model worker refused the connection: {msg['error']}")
        if msg.get("version") != P.PROTOCOL_VERSION:
            sock.close()
            raise WorkerError(f"model worker speaks protocol version {msg.get('version')!r}, this server "
                              f"{P.PROTOCOL_VERSION}; run the worker of the same installation")
        self._set_state(msg.get("state", "loading"), msg.get("message", ""), msg.get("error"))

    def _reader(self, sock: socket.socket, generation: int) -> None:
        reason = "connection closed"
        try:
            while True:
                msg = P.check_response(P.read_frame(sock))
                if msg.get("op") == "progress":
                    self._on_progress(msg)
                    continue
                future = self._pending.pop(msg["id"], None)
                if future is not None and not future.done():
                    future.set_result(msg)
        except (OSError, P.ProtocolError) as exc:
            reason = str(exc)
        self._connection_lost(generation, reason)

    def _connection_lost(self, generation: int, reason: str) -> None:
        with self._lock:
            if generation != self._generation or self._sock is None:
                return
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
            pending, self._pending = self._pending, {}
            self.ready.clear()
            if self.closed:
                return
            code = self._proc.poll() if self._proc is not None else None
            if self._proc is not None and code is None:
                time.sleep(0.2)
                code = self._proc.poll()
            self.deaths += 1
            self.consecutive_failures += 1
            self.state = "stopped"
        detail = f"model worker stopped ({reason}" + (f", exit code {code})" if code is not None else ")")
        log.warning("%s; it restarts at the next request", detail)
        for future in pending.values():
            if not future.done():
                future.set_result(P.error_response(-1, f"{detail}; it is being restarted", P.INTERNAL))
        self.on_event("died", {"error": detail, "exit_code": code, "failures": self.consecutive_failures})
        if self.consecutive_failures == 2:
            self.on_event("failed_twice", {"error": detail})

    def _on_progress(self, msg: dict) -> None:
        self._set_state(msg["state"], msg["message"], None if msg["state"] != "failed" else msg["message"])
        self.on_event("progress", msg)

    def _set_state(self, state: str, message: str, error: str | None) -> None:
        self.state, self.state_message = state, message
        if state == "failed":
            self.load_error = error or message
        if state in ("ready", "failed"):
            self.ready.set()

    # -------------------------------------------------- shutdown

    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            sock, self._sock = self._sock, None
            pending, self._pending = self._pending, {}
            for future in pending.values():  # requests in flight end now, not at their timeout
                if not future.done():
                    future.set_result(P.error_response(-1, "worker client closed", P.INTERNAL))
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._stop_process()
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None
