"""pytest-lsp fixtures: the real ``infill serve`` with the real starter model, as Neovim and VS Code clients."""

from __future__ import annotations

import pytest_lsp
from pytest_lsp import LanguageClient

from lsp_util import CLIENTS, CONFIG, SETTINGS, start, wait_ready


@pytest_lsp.fixture(config=CONFIG, params=CLIENTS)
async def client(request, lsp_client: LanguageClient):
    """A session as each editor (both capability sets), with the model already loaded."""
    await start(lsp_client, request.param, SETTINGS)
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG)
async def nvim(lsp_client: LanguageClient):
    """One Neovim session (for behaviours that do not depend on the client's capabilities)."""
    await start(lsp_client, CLIENTS[0], SETTINGS)
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


