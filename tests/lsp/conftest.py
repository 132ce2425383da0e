"""pytest-lsp fixtures: the real ``infill serve`` with the real starter model, as Neovim and VS Code clients."""

from __future__ import annotations

import os
import sys

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp_util import wait_ready

SERVER = [sys.executable, "-m", "lsp_server.cli", "serve", "--log-level", "INFO"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
SETTINGS = {"device": "cpu", "threads": 1, "debounceMs": 20, "latencyBudgetMs": 20000, "maxTokens": 16}
CLIENTS = ["neovim@v0.11.0", "visual-studio-code"]


def make_client() -> LanguageClient:
    """pytest-lsp's client, plus a workspace/applyEdit handler that records and accepts edits."""
    client = pytest_lsp.make_test_lsp_client()
    client.applied_edits = []

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: lsp.ApplyWorkspaceEditParams):
        client.applied_edits.append(params)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    return client


CONFIG = ClientServerConfig(server_command=SERVER, server_env=ENV, client_factory=make_client)


async def start(lsp_client: LanguageClient, spec: str, settings: dict | None) -> None:
    caps = client_capabilities(spec)
    lsp_client.init_result = await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=caps, initialization_options=settings, root_uri="file:///tmp",
        client_info=lsp.ClientInfo(name=spec)))


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


