"""``infill worker``: the denoiser in its own process, served over the msgpack protocol (model/protocol.py).

The model loads once, in the background, while clients may already connect (they receive
``progress`` events). One reader thread per connection parses and checks requests; a single model
thread runs them, combining fill requests that are waiting at the same moment into one
``Denoiser.fill`` call. ``cancel`` sets the request's CancelToken, which the sampler checks between
steps. A unix socket is created 0600; TCP binds loopback and always requires a shared token, which
the client sends in a ``hello`` first. A bad message gets an error response; it never stops the worker.
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import hmac
import ipaddress
import logging
import os
import queue
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from infill.types import CancelToken, Cancelled, FillRequest

from . import protocol as P
from .config import DTYPE_NAMES
from .protocol import parse_tcp
from .errors import CanvasTooLong

log = logging.getLogger("infill.worker")

TOKEN_ENV = "INFILL_WORKER_TOKEN"


def default_model_dir() -> str:
    """The starter checkpoint shipped inside the ``model`` package."""
    from importlib import resources

    return str(resources.files("model") / "starter")


@dataclass
class WorkerConfig:
    """How the worker runs; every field has a command-line flag."""

    model: str = field(default_factory=default_model_dir)
    device: str = "auto"  # auto | cpu | cuda[:N]
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 (model.modeling.pick_dtype)
    token: str | None = None  # required for TCP; clients send it in ``hello``
    max_batch: int = 8  # fill requests combined into one denoiser call
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    max_message_bytes: int = P.MAX_MESSAGE_BYTES


def load_text_denoiser(config: WorkerConfig):
    """The real denoiser, on the dtype, threads and step budget the machine serves fastest (measured
    at load: ``model.calibrate``); imported here so the protocol side of this module stays torch-free."""
    from .calibrate import load_calibrated

    return load_calibrated(config.model, device=config.device, dtype=config.dtype, threads=config.threads)


class _Job:
    """One ``fill`` message: its requests, cancel token, and the connection that awaits the answer."""

    def __init__(self, conn: "_Connection", msg: dict):
        self.conn = conn
        self.id: int = msg["id"]
        self.requests: list[FillRequest] = P.requests_from_message(msg)
        self.options: P.FillOptions = P.FillOptions.from_wire(msg.get("options"))
        deadline_ms = msg.get("deadline_ms")
        self.token = CancelToken(None if deadline_ms is None else time.monotonic() + deadline_ms / 1000)
        self.received = time.perf_counter()
        self._done = threading.Lock()
        self.finished = False

    def finish(self, response: dict) -> bool:
        """Send the response once; later calls (cancel raced with completion) do nothing."""
        with self._done:
            if self.finished:
                return False
            self.finished = True
        self.conn.jobs.pop(self.id, None)
        self.conn.send(response)
        return True


class _AllCancelled(CancelToken):
    """A batch stops early only when every request in it was cancelled or ran out of time."""

    def __init__(self, jobs: list[_Job]):
        super().__init__()
        self._jobs = jobs

    @property
    def cancelled(self) -> bool:
        return all(job.token.cancelled for job in self._jobs)


class _Connection:
    """One client: a socket, a send lock, its in-flight jobs (for cancel) and whether it authenticated."""

    def __init__(self, worker: "Worker", sock: socket.socket, authed: bool):
        self.worker = worker
        self.sock = sock
        self.authed = authed
        self.jobs: dict[int, _Job] = {}
        self._send_lock = threading.Lock()
        self.closed = False

    def send(self, message: dict) -> None:
        if self.closed:
            return
        try:
            data = P.encode_frame(message, self.worker.config.max_message_bytes)
        except P.MessageTooLarge as exc:
            data = P.encode_frame(P.error_response(message.get("id"), str(exc), P.TOO_LARGE))
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for job in list(self.jobs.values()):
            job.token.cancel()  # nobody is listening any more
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def serve(self) -> None:
        """Reader loop: parse, check and dispatch frames until the peer leaves or breaks framing."""
        try:
            if self.authed:
                self.send(self.worker.state_event())
            while not self.closed:
                try:
                    msg = P.read_frame(self.sock, self.worker.config.max_message_bytes)
                except P.MessageTooLarge as exc:
                    self.send(P.error_response(None, str(exc), P.TOO_LARGE))
                    break
                except P.ConnectionClosed:
                    break
                except P.ProtocolError as exc:  # frame intact, body garbage: answer and go on
                    self.send(P.error_response(None, str(exc)))
                    continue
                if not self._dispatch(msg):
                    break
        except OSError as exc:
            log.debug("connection error: %s", exc)
        except Exception:
            log.exception("connection reader failed")
        finally:
            self.close()
            self.worker.forget(self)

    def _dispatch(self, msg: dict) -> bool:
        """Handle one message; False closes the connection."""
        try:
            P.check_request(msg)
        except P.ProtocolError as exc:
            self.send(P.error_response(msg.get("id"), str(exc)))
            return True
        op, msg_id = msg["op"], msg["id"]
        if op == "hello":
            if not self.worker.token_ok(msg.get("token")):
                self.send(P.error_response(msg_id, "invalid token", P.UNAUTHORIZED))
                return False
            version = msg.get("version", P.PROTOCOL_VERSION)
            if version != P.PROTOCOL_VERSION:
                self.send(P.error_response(msg_id, f"protocol version {version} is not this worker's "
                                           f"{P.PROTOCOL_VERSION}; run the worker of the same installation"))
                return False
            first = not self.authed
            self.authed = True
            self.send({"id": msg_id, "ok": True, **self.worker.describe()})
            if first:
                self.send(self.worker.state_event())
            return True
        if not self.authed:
            self.send(P.error_response(msg_id, "send 'hello' with the worker token first", P.UNAUTHORIZED))
            return False
        if op == "health":
            self.send({"id": msg_id, "ok": True, **self.worker.describe()})
        elif op == "cancel":
            job = self.jobs.get(msg["target"])
            if job is not None:
                job.token.cancel()
                job.finish(P.error_response(job.id, "cancelled", P.CANCELLED))
            self.send({"id": msg_id, "ok": True, "cancelled": job is not None})
        elif op == "fill":
            if msg_id in self.jobs:
                self.send(P.error_response(msg_id, f"id {msg_id} is already in flight"))
                return True
            job = _Job(self, msg)
            self.jobs[msg_id] = job
            self.worker.submit(job)
        return True


class Worker:
    """Owns the model, the listening socket, the connections and the model thread."""

    def __init__(self, config: WorkerConfig, load: Callable[[WorkerConfig], object] = load_text_denoiser):
        self.config = config
        self._load = load
        self.denoiser = None
        self.state = "loading"  # loading | ready | failed
        self.state_message = "starting"
        self.percentage: int | None = 0
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.stopping = threading.Event()
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._conns: set[_Connection] = set()
        self._conns_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._unix_path: str | None = None
        self.address = ""
        self.batches = 0  # denoiser calls made
        self.requests_served = 0

    # -------------------------------------------------- listening

    def bind_unix(self, path: str) -> None:
        """Listen on a unix socket only this user can open (0600, created under a 0177 umask)."""
        p = Path(path)
        if p.exists() or p.is_symlink():
            if not stat.S_ISSOCK(p.lstat().st_mode):
                raise SystemExit(f"infill worker: {path} exists and is not a socket; refusing to replace it")
            p.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(16)
        self._listener, self._unix_path, self.address = sock, path, f"unix:{path}"

    def bind_tcp(self, host: str, port: int, allow_remote: bool = False) -> None:
        """Listen on TCP; loopback only unless ``allow_remote``; a token is always required."""
        if not self.config.token:
            raise SystemExit(f"infill worker: TCP needs a token (--token or ${TOKEN_ENV})")
        if not is_loopback(host) and not allow_remote:
            raise SystemExit(f"infill worker: {host} is not a loopback address; pass --allow-remote to bind it")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
        self._listener = sock
        bound = sock.getsockname()
        self.address = f"tcp:{bound[0]}:{bound[1]}"

    # -------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start loading the model and the model thread (the caller then runs ``serve_forever``)."""
        threading.Thread(target=self._load_model, name="infill-load", daemon=True).start()
        threading.Thread(target=self._model_loop, name="infill-model", daemon=True).start()

    def serve_forever(self) -> None:
        assert self._listener is not None, "bind first"
        self._listener.settimeout(0.5)
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    break
                raise
            sock.settimeout(None)
            conn = _Connection(self, sock, authed=not self.config.token)
            with self._conns_lock:
                self._conns.add(conn)
            threading.Thread(target=conn.serve, name="infill-conn", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()
        if self._listener is not None:
            self._listener.close()
        if self._unix_path:
            try:
                os.unlink(self._unix_path)
            except OSError:
                pass

    def forget(self, conn: _Connection) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def token_ok(self, token: str | None) -> bool:
        if not self.config.token:
            return True
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.config.token.encode())

    def describe(self) -> dict:
        return {"state": self.state, "message": self.state_message, "error": self.load_error,
                "model": self.config.model, "device": str(getattr(self.denoiser, "device", self.config.device)),
                "dtype": str(getattr(self.denoiser, "dtype", self.config.dtype)).removeprefix("torch."),
                "pid": os.getpid(), "version": P.PROTOCOL_VERSION, "batches": self.batches,
                "max_position": getattr(self.denoiser, "max_position", None),
                "requests": self.requests_served,
                "calibration": getattr(getattr(self.denoiser, "calibration", None), "to_wire", lambda: None)()}

    def state_event(self) -> dict:
        return {"op": "progress", "state": self.state, "message": self.state_message, "percentage": self.percentage}

    def _broadcast(self, event: dict) -> None:
        with self._conns_lock:
            conns = [c for c in self._conns if c.authed]
        for conn in conns:
            conn.send(event)

    def _progress(self, message: str, percentage: int | None, state: str = "loading") -> None:
        self.state, self.state_message, self.percentage = state, message, percentage
        log.info("%s", message)
        self._broadcast(self.state_event())

    def _load_model(self) -> None:
        t0 = time.perf_counter()
        try:
            self._progress(f"loading model from {self.config.model}", 0)
            self.denoiser = self._load(self.config)
            self._progress("warming up", 80)
            self.denoiser.fill([FillRequest("def f(", "):\n    pass\n", 2, "python")])
            self._progress(f"model ready in {time.perf_counter() - t0:.1f}s", 100, state="ready")
        except Exception as exc:  # any load failure is reported to clients; the worker keeps answering
            log.exception("model load failed")
            self.load_error = f"{type(exc).__name__}: {exc}"
            self._progress(f"model failed to load: {self.load_error}", None, state="failed")
        finally:
            self.loaded.set()

    # -------------------------------------------------- the model thread

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)

    def _next_batch(self) -> list[_Job]:
        """The next job plus every compatible job already waiting (same options), up to ``max_batch`` requests."""
        first = self._jobs.get()
        batch, count, rest = [first], len(first.requests), []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job.options == first.options and count + len(job.requests) <= self.config.max_batch:
                batch.append(job)
                count += len(job.requests)
            else:
                rest.append(job)
        for job in rest:  # incompatible ones wait for the next round, order kept
            self._jobs.put(job)
        return batch

    def _model_loop(self) -> None:
        self.loaded.wait()  # requests sent while loading queue up and are batched together
        while not self.stopping.is_set():
            batch = self._next_batch()
            live = [job for job in batch if not job.finished and not job.token.cancelled]
            for job in batch:
                if job not in live:
                    job.finish(P.error_response(job.id, "cancelled before it started", P.CANCELLED))
            if not live:
                continue
            if self.state != "ready":
                for job in live:
                    job.finish(P.error_response(job.id, f"model failed to load: {self.load_error}", P.MODEL_FAILED))
                continue
            self._run(live)

    def _run(self, jobs: list[_Job]) -> None:
        requests = [r for job in jobs for r in job.requests]
        t0 = time.perf_counter()
        try:
            results = self._fill(requests, _AllCancelled(jobs), jobs[0].options)
            if len(results) != len(requests):
                raise RuntimeError(f"denoiser returned {len(results)} results for {len(requests)} requests")
        except Cancelled:
            for job in jobs:
                job.finish(P.error_response(job.id, "cancelled (or past its deadline)", P.CANCELLED))
            return
        except P.ProtocolError as exc:  # bad options: the request's fault
            for job in jobs:
                job.finish(P.error_response(job.id, str(exc), P.BAD_REQUEST))
            return
        except CanvasTooLong as exc:  # the model cannot honour the canvas: said, never shortened
            if len(jobs) > 1:  # one job's canvas must not fail the others: run them one by one
                for job in jobs:
                    self._run([job])
                return
            jobs[0].finish(P.error_response(jobs[0].id, str(exc), P.CANVAS_TOO_LONG))
            return
        except Exception as exc:
            log.exception("fill failed")
            for job in jobs:
                job.finish(P.error_response(job.id, f"fill failed: {type(exc).__name__}: {exc}", P.INTERNAL))
            return
        self.batches += 1
        elapsed_ms = (time.perf_counter() - t0) * 1000
        i = 0
        for job in jobs:
            mine = results[i:i + len(job.requests)]
            i += len(job.requests)
            self.requests_served += 1
            wire = [P.result_to_wire(r) for r in mine]
            for w in wire:
                w["timings"].update(batch_ms=elapsed_ms, queue_ms=(t0 - job.received) * 1000,
                                    batch_size=float(len(requests)))
            if job.token.cancelled:
                job.finish(P.error_response(job.id, "cancelled (or past its deadline)", P.CANCELLED))
            else:
                job.finish({"id": job.id, "ok": True, "results": wire})

    def _fill(self, requests: list[FillRequest], token: CancelToken, options: P.FillOptions):
        """Call the denoiser; ``options`` change its sampler options (and turn its copy prior off) for
        this call only."""
        kwargs = {}
        sampler = self._sampler_for(options)
        if sampler is not None:
            kwargs["sampler"] = sampler
        if options.copy_prior is False:
            current = getattr(getattr(self.denoiser, "options", None), "copy_prior", None)
            if current is None:
                raise P.ProtocolError("this denoiser has no copy prior to turn off")
            kwargs["copy_prior"] = dataclasses.replace(current, weight=0.0)
        return self.denoiser.fill(requests, cancel=token, **kwargs)

    def _sampler_for(self, options: P.FillOptions):
        """The denoiser's ``options.sampler`` (a ``SamplerOptions``) with ``options`` applied; None when
        they change nothing. A denoiser without sampler options cannot take any: ProtocolError."""
        overrides = options.sampler_overrides()
        if not overrides:
            return None
        current = getattr(getattr(self.denoiser, "options", None), "sampler", None)
        if not dataclasses.is_dataclass(current):
            raise P.ProtocolError(f"this denoiser takes no sampler options (got {sorted(overrides)})")
        try:
            per_call = dataclasses.replace(current, **overrides)
            per_call.validate()
        except (TypeError, ValueError) as exc:
            raise P.ProtocolError(f"bad fill options: {exc}") from exc
        return per_call


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _watch_parent(worker: Worker) -> None:
    """Exit when the process that started us goes away (the language server crashed or was killed)."""
    parent = os.getppid()
    while not worker.stopping.wait(1.0):
        if os.getppid() != parent:
            log.info("parent process exited; stopping")
            worker.stop()
            os._exit(0)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="infill worker", description=__doc__.split("\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="unix socket to create (mode 0600)")
    where.add_argument("--tcp", metavar="HOST:PORT", type=parse_tcp, help="TCP address (loopback; needs a token)")
    ap.add_argument("--model", default=None, help="checkpoint directory or a hub id in the local HF cache (default: the shipped starter model)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    ap.add_argument("--dtype", default="auto", choices=DTYPE_NAMES,
                    help="weights' dtype (default auto: bf16 on a GPU or an AMX CPU, else float32)")
    ap.add_argument("--token", default=None, help=f"shared secret clients send in 'hello' (or set ${TOKEN_ENV})")
    ap.add_argument("--allow-remote", action="store_true", help="allow a non-loopback TCP address")
    ap.add_argument("--max-batch", type=int, default=8, help="fill requests combined into one model call")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process exits")
    ap.add_argument("--log-level", default="INFO")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(var, "1")  # weights come from the local directory only
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s infill-worker %(levelname)s %(message)s")
    try:  # a native crash leaves its stack in the server's log
        faulthandler.enable(sys.stderr)
    except (AttributeError, OSError, ValueError):  # a stderr without a file descriptor (embedded, captured)
        pass
    config = WorkerConfig(model=args.model or default_model_dir(), device=args.device, dtype=args.dtype,
                          token=args.token or os.environ.get(TOKEN_ENV) or None,
                          max_batch=max(1, args.max_batch), threads=max(0, args.threads))
    worker = Worker(config)
    if args.socket:
        worker.bind_unix(args.socket)
    else:
        worker.bind_tcp(*args.tcp, allow_remote=args.allow_remote)
    print(f"infill worker listening on {worker.address}", file=sys.stderr, flush=True)
    worker.start()
    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(worker,), daemon=True).start()
    try:
        worker.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
