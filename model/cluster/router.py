"""Ray Serve request router with session affinity (imported by Ray only, at deployment).

A fill carries its ``affinity`` key (the front's connection: one editor's language server) as a
keyword argument. The replica that key hashes to (``affinity.rank_replicas``) is tried first; when
its queue is full (``max_ongoing``) the others are tried, least loaded first, then Ray's usual
backoff. Requests without a key go to the least loaded replica.
"""

from __future__ import annotations

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from .affinity import rank_replicas


class AffinityRouter(RequestRouter):
    async def choose_replicas(self, candidate_replicas: list[RunningReplica],
                              pending_request: PendingRequest | None = None) -> list[list[RunningReplica]]:
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # every rank tried: back off, then again
        key = (pending_request.kwargs or {}).get("affinity") if pending_request is not None else None
        if not key or len(candidate_replicas) < 2:
            return [candidate_replicas]
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        ranked = [by_id[i] for i in rank_replicas(str(key), list(by_id))]
        return [ranked[:1], ranked[1:]]
