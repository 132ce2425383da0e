"""Start and stop a cluster: Ray (a local instance on loopback, or an existing one), the Serve
application, and the front on its own event-loop thread. Used by ``infill cluster``, the tests and
the benchmark; the only module besides ``deployment``/``router`` that imports Ray.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import threading
import time

from .. import protocol as P
from .config import ClusterConfig, ClusterConfigError
from .front import Front

log = logging.getLogger("infill.cluster")

RETRY_PAUSE_S = 0.5  # before a fill whose replica died is sent again (Ray is marking the replica dead)


def import_ray():
    """Ray and Serve, or a sentence saying how to install them."""
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise SystemExit("infill cluster needs Ray Serve: pip install -e '.[cluster]' "
                         f"(with -c constraints.txt for the pinned version) ({exc})") from exc
    return ray, serve


class ServeBackend:
    """The front's ``Backend``: fills go to the deployment handle with the client's affinity key; a fill
    whose replica died is sent again (``retries``), and one that still fails is answered with an error."""

    def __init__(self, handle, config: ClusterConfig):
        self.handle = handle
        self.config = config

    async def fill(self, msg: dict, affinity: str) -> dict:
        from ray.exceptions import RayActorError

        start = time.monotonic()
        failure = ""
        for attempt in range(self.config.retries + 1):
            forwarded = msg
            if msg.get("deadline_ms") is not None:  # the replica's deadline counts from the client's send
                left = msg["deadline_ms"] - int((time.monotonic() - start) * 1000)
                if left <= 0:
                    return P.error_response(msg["id"], "past its deadline", P.CANCELLED)
                forwarded = {**msg, "deadline_ms": left}
            response = self.handle.fill.remote(forwarded, affinity=affinity)
            try:
                return await asyncio.wait_for(_result(response), self.config.request_timeout_s)
            except asyncio.TimeoutError:
                response.cancel()
                return P.error_response(msg["id"], f"no replica answered within {self.config.request_timeout_s:.0f}s",
                                        P.INTERNAL)
            except asyncio.CancelledError:
                response.cancel()
                raise
            except RayActorError as exc:  # the replica died or is unreachable: Ray replaces it
                failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.warning("fill %s: replica lost (%s); attempt %d of %d", msg["id"], failure, attempt + 1,
                            self.config.retries + 1)
                await asyncio.sleep(RETRY_PAUSE_S)
            except Exception as exc:  # the replica raised: its own bug, not the request's
                log.exception("fill %s failed in a replica", msg["id"])
                return P.error_response(msg["id"], f"fill failed in a replica: {type(exc).__name__}", P.INTERNAL)
        return P.error_response(msg["id"], f"replica lost ({failure}); tried {self.config.retries + 1} times",
                                P.INTERNAL)

    async def describe(self, affinity: str | None = None) -> dict:
        from ray import serve

        replica = await asyncio.wait_for(_result(self.handle.describe.remote(affinity=affinity)),
                                         self.config.request_timeout_s)
        status = await asyncio.to_thread(serve.status)
        running = 0
        app = status.applications.get(self.config.app_name)
        if app is not None:
            for deployment in app.deployments.values():
                running += int(deployment.replica_states.get("RUNNING", 0))
        ready = running > 0 and replica.get("state") == "ready"
        return {"state": "ready" if ready else "loading",
                "message": f"{running} of {self.config.replicas} replicas running",
                "error": replica.get("error"), "model": replica.get("model"), "device": replica.get("device"),
                "dtype": replica.get("dtype"), "replicas": running, "batches": replica.get("batches", 0),
                "requests": replica.get("requests", 0), "calibration": replica.get("calibration"),
                "max_position": replica.get("max_position"),
                # the replica this client's fills go to first: its process and the fill ids it holds
                "replica_pid": replica.get("pid"), "in_flight": replica.get("in_flight", [])}


async def _result(response):
    return await response


class Cluster:
    """A running cluster. ``start()`` returns the front's address; ``stop()`` leaves no process behind
    (it shuts Ray down when it started it)."""

    def __init__(self, config: ClusterConfig, ray_init: dict | None = None):
        self.config = config.validate()
        self.ray_init = dict(ray_init or {})
        self.handle = None
        self.backend: ServeBackend | None = None
        self.front: Front | None = None
        self.address = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started_ray = False

    # -------------------------------------------------- lifecycle

    def start(self) -> str:
        ray, serve = import_ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
        cfg = self.config
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": True}
            if cfg.ray_address:
                kwargs["address"] = cfg.ray_address
            else:  # a new local instance, its services on loopback
                kwargs.update(address="local", _node_ip_address="127.0.0.1",
                              num_cpus=max(os.cpu_count() or 1, math.ceil(cfg.replicas * cfg.num_cpus)))
            kwargs.update(self.ray_init)
            ray.init(**kwargs)
            self._started_ray = True
        try:
            self._check_resources(ray.cluster_resources())
            serve.start(proxy_location="Disabled")  # no HTTP proxy: the front is the only way in
            self.deploy()
            self._start_front()
        except BaseException:
            self.stop()
            raise
        return self.address

    def _check_resources(self, available: dict) -> None:
        cfg = self.config
        for name, per_replica, flag in (("CPU", cfg.num_cpus, "--num-cpus"), ("GPU", cfg.num_gpus, "--num-gpus")):
            need = cfg.replicas * per_replica
            if need > available.get(name, 0) + 1e-9:
                raise ClusterConfigError(f"{cfg.replicas} replicas x {flag} {per_replica:g} need {need:g} {name}s; "
                                         f"the Ray cluster has {available.get(name, 0):g}")

    def deploy(self, **changes) -> None:
        """(Re)deploy the application; ``changes`` replace ClusterConfig fields (replicas, batching,
        batch_wait_ms...). Replica count and batching change without reloading running replicas."""
        from ray import serve

        from .deployment import build_app

        if changes:
            self.config = dataclasses.replace(self.config, **changes).validate()
        self.handle = serve.run(build_app(self.config), name=self.config.app_name, route_prefix=None)
        if self.backend is None:
            self.backend = ServeBackend(self.handle, self.config)
        else:
            self.backend.handle, self.backend.config = self.handle, self.config

    def _start_front(self) -> None:
        started = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self.front = Front(self.backend, self.config.worker.token, self.config.worker.max_message_bytes)
            try:
                self.address = loop.run_until_complete(self.front.start(self.config.host, self.config.port))
            except BaseException as exc:
                error.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.front.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="infill-cluster-front", daemon=True)
        self._thread.start()
        started.wait(30)
        if error:
            raise error[0]
        if not self.address:
            raise RuntimeError("the front did not start within 30s")

    def run_async(self, coro, timeout: float = 60.0):
        """Run ``coro`` on the front's loop (where the handle's responses are awaited) and wait for it."""
        assert self._loop is not None, "start the cluster first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def describe_replica(self, affinity: str | None = None, timeout: float = 30.0) -> dict:
        """One replica's state (the one ``affinity`` prefers): pid, device, in-flight fill ids."""
        return self.run_async(_result(self.handle.describe.remote(affinity=affinity)), timeout)

    def replica_states(self) -> dict:
        from ray import serve

        app = serve.status().applications.get(self.config.app_name)
        states: dict[str, int] = {}
        for deployment in (app.deployments.values() if app else ()):
            for state, n in deployment.replica_states.items():
                states[state] = states.get(state, 0) + int(n)
        return states

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
            self._loop = self._thread = None
        try:
            import ray
            from ray import serve
        except ImportError:
            return
        if ray.is_initialized():
            try:
                serve.shutdown()
            except Exception:
                log.exception("serve shutdown failed")
            if self._started_ray:
                ray.shutdown()
                self._started_ray = False
