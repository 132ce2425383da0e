"""Session affinity: which replica a user's fills go to first, so they find their context cache there.

Rendezvous (highest-random-weight) hashing: each (key, replica) pair gets a stable score and the
replicas are ranked by it. When a replica goes away only the keys it held move, each to its own
next choice; a new replica takes a fair share of keys and leaves the others where they were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _score(key: str, replica: str) -> int:
    digest = hashlib.blake2b(f"{key}\0{replica}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank_replicas(key: str, replicas: Sequence[str]) -> list[str]:
    """``replicas`` ordered by preference for ``key`` (most preferred first; ties broken by name)."""
    return sorted(replicas, key=lambda r: (-_score(key, r), r))
