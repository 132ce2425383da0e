"""Fixtures for the command-line tests: the tiny random checkpoint of the model tests."""

from tests.model.conftest import tiny_checkpoint, tiny_tokenizer  # noqa: F401  (fixtures, shared)
