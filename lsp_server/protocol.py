"""The JSON-RPC/LSP protocol layer: pygls' ``LanguageServerProtocol`` with the answers it leaves out.

- A request whose params do not fit the LSP schema gets an InvalidParams error (pygls sends none);
  JSON that is not JSON-RPC 2.0 gets InvalidRequest when it carries an id, and is otherwise ignored.
- A message body that is not UTF-8 JSON gets a ParseError (-32700) with id null
  (``send_parse_error``, called from ``InfillServer.report_server_error``); the connection stays up.
- Positions are always UTF-16 (the only encoding ``convert.py`` speaks).
- Documents are kept by the server (``InfillServer.documents``), not in pygls' workspace.
"""

from __future__ import annotations

import logging

from lsprotocol import types as lsp
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger("infill.protocol")


class InfillProtocol(LanguageServerProtocol):
    """pygls' protocol, except that a request whose params do not fit the LSP schema gets an
    InvalidParams error response instead of no response at all, and positions are always UTF-16."""

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(self, params: lsp.InitializeParams):
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            # Every client must support UTF-16, the only encoding convert.py speaks.
            general.position_encodings = [lsp.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))

    # The documents live in ``InfillServer.documents`` (infill.documents), not in pygls' workspace:
    # pygls splits lines with str.splitlines (\f, \v, \x85, \u2028... end lines there, not in LSP)
    # and clamps the change's Position objects *in place*, so with pygls' copy kept in sync our
    # handler saw rewritten ranges and the server's text drifted from the editor's.
    @lsp_method(lsp.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: lsp.DidOpenTextDocumentParams):
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams):
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: lsp.DidCloseTextDocumentParams):
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None

    def structure_message(self, data: dict):
        try:
            return super().structure_message(data)
        except Exception as exc:
            if isinstance(data, dict) and "jsonrpc" in data and "id" in data and "method" in data:
                self._send_response(data["id"], error=lsp.ResponseError(
                    code=lsp.ErrorCodes.InvalidParams, message=f"invalid params for {data.get('method')!r}"))
                return _Handled()
            if isinstance(data, dict) and "jsonrpc" in data:
                return _Handled()  # a malformed notification or response: logged by pygls, ignored
            raise exc

    def send_parse_error(self, error: Exception) -> None:
        """JSON-RPC 2.0 section 5.1: a body that cannot be parsed is answered with -32700 and id null
        (pygls' typed response drops a null id, so the message is written as JSON directly)."""
        log.warning("answering an unparseable message body with ParseError: %s", error)
        self._send_data({"jsonrpc": "2.0", "id": None, "error": {
            "code": int(lsp.ErrorCodes.ParseError), "message": f"parse error: {type(error).__name__}: {error}"[:500]}})

    def _handle_cancel_notification(self, msg_id):
        """pygls cancels async handlers; a command's engine work also needs its CancelToken set."""
        token = self._server.request_tokens.pop(msg_id, None)
        if token is not None:
            token.cancel()
        super()._handle_cancel_notification(msg_id)

    def handle_message(self, message):
        if isinstance(message, _Handled):
            return
        if not hasattr(message, "jsonrpc"):  # JSON that is not JSON-RPC (no "jsonrpc" member, or not an object)
            msg_id = message.get("id") if isinstance(message, dict) else None
            log.warning("ignoring a message that is not JSON-RPC 2.0: %.200r", message)
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                self._send_response(msg_id, error=lsp.ResponseError(
                    code=lsp.ErrorCodes.InvalidRequest, message="not a JSON-RPC 2.0 request"))
            return
        super().handle_message(message)


class _Handled:
    """A message already answered (or deliberately ignored) while it was being parsed."""
