"""Exceptions shared by checkpoint loading (``model.modeling``) and the family adapters
(``model.families``); a leaf module, so both import it without importing each other."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, unsafe (pickles), or does not match its config."""
