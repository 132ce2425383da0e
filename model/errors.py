"""Exceptions raised on the model side and caught where torch is not loaded: checkpoint loading
(``model.modeling``) and the family adapters (``model.families``) share ``CheckpointError``; the
worker maps ``CanvasTooLong`` to its own error code. A leaf module, so any of them imports it
without an import loop."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, unsafe (pickles), or does not match its config."""


class CanvasTooLong(ValueError):
    """A canvas that does not fit the loaded model's positions even with no context at all."""
