"""``infill cluster``: the model worker as a Ray Serve deployment for a team's shared GPU box.

Replicas (``deployment.InfillReplica``) each load the denoiser on their own device and run fills
from many users in one model call (``@serve.batch``); a front (``front.Front``) speaks the worker's
own TCP protocol (model/protocol.py), so a language server reaches the cluster through its usual
``infill.workerAddress`` setting. Ray is an optional extra (``pip install -e .[cluster]``): nothing
here imports it until a cluster is started.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(argv)
