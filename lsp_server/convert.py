"""The one module that translates between our types (str offsets, plain edits) and lsprotocol.

Positions are LSP (line, UTF-16 character); ``infill.positions.LineIndex`` does the arithmetic.
"""

from __future__ import annotations

from typing import Sequence

from lsprotocol import types as lsp

from infill.positions import LineIndex
from infill.types import InfillError

from .scheduler import PlainEdit

REWRITE_COMMAND = "infill.rewriteSelection"
FILL_MIDDLE_COMMAND = "infill.fillMiddle"
COMMANDS = (REWRITE_COMMAND, FILL_MIDDLE_COMMAND)
REWRITE_TITLE = "Rewrite selection"
FILL_MIDDLE_TITLE = "Fill in the middle"


def offset_of(index: LineIndex, position: lsp.Position) -> int:
    """str offset of an LSP position; past the end of a line or the document clamps (LSP rule)."""
    return index.offset_at(position.line, position.character)


def offsets_of(index: LineIndex, rng: lsp.Range) -> tuple[int, int]:
    start, end = offset_of(index, rng.start), offset_of(index, rng.end)
    if start > end:
        raise InfillError(f"range start {rng.start} is after its end {rng.end}")
    return start, end


def position_of(index: LineIndex, offset: int) -> lsp.Position:
    line, character = index.position_at(offset)
    return lsp.Position(line=line, character=character)


def range_of(index: LineIndex, start: int, end: int) -> lsp.Range:
    return lsp.Range(start=position_of(index, start), end=position_of(index, end))


def text_edit(index: LineIndex, edit: PlainEdit) -> lsp.TextEdit:
    return lsp.TextEdit(range=range_of(index, edit.start, edit.end), new_text=edit.new_text)


def inline_completion(index: LineIndex, edits: Sequence[PlainEdit]) -> lsp.InlineCompletionList:
    """One inline item per suggestion, best first: ``insertText`` replaces ``range`` (which contains
    the cursor); the client shows the first and cycles through the rest."""
    return lsp.InlineCompletionList(items=[
        lsp.InlineCompletionItem(insert_text=e.new_text, range=range_of(index, e.start, e.end)) for e in edits])


def completion_list(index: LineIndex, edits: Sequence[PlainEdit], cursor: int) -> lsp.CompletionList:
    """The fallback for clients without inline completion: one item per suggestion, best first
    (``sortText`` keeps that order), each with a textEdit that does the replacement."""
    return lsp.CompletionList(is_incomplete=True, items=[_completion_item(index, e, cursor, rank)
                                                         for rank, e in enumerate(edits)])


def _completion_item(index: LineIndex, edit: PlainEdit, cursor: int, rank: int) -> lsp.CompletionItem:
    first_line = edit.new_text.strip().splitlines()[0] if edit.new_text.strip() else edit.new_text
    label = first_line if len(first_line) <= 60 else first_line[:57] + "..."
    # The typed word before the cursor inside the range is what the client filters on.
    filter_text = index.text[edit.start:cursor] + edit.new_text[max(0, cursor - edit.start):] \
        if edit.new_text.startswith(index.text[edit.start:cursor]) else edit.new_text
    return lsp.CompletionItem(
        label=label or "(infill)", kind=lsp.CompletionItemKind.Snippet, detail="infill",
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.PlainText, value=edit.new_text),
        insert_text_format=lsp.InsertTextFormat.PlainText, filter_text=filter_text,
        text_edit=text_edit(index, edit), sort_text=f"{rank:02d}",
    )


def workspace_edit(uri: str, version: int | None, index: LineIndex, edit: PlainEdit) -> lsp.WorkspaceEdit:
    """A versioned edit: a client rejects it if the document is no longer at ``version``."""
    doc = lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(text_document=doc, edits=[text_edit(index, edit)])])


def code_actions(uri: str, rng: lsp.Range, only: list[str] | None) -> list[lsp.CodeAction]:
    """"Rewrite selection" and "Fill in the middle" for a non-empty selection, as commands run on demand."""
    if rng.start == rng.end:
        return []
    kind = lsp.CodeActionKind.RefactorRewrite
    if only and not any(kind.value == k or kind.value.startswith(k + ".") for k in only):
        return []
    args = [uri, _range_json(rng)]
    return [
        lsp.CodeAction(title=title, kind=kind, command=lsp.Command(title=title, command=command, arguments=args))
        for title, command in ((REWRITE_TITLE, REWRITE_COMMAND), (FILL_MIDDLE_TITLE, FILL_MIDDLE_COMMAND))
    ]


def _range_json(rng: lsp.Range) -> dict:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


def command_arguments(arguments: list | None) -> tuple[str, lsp.Range]:
    """``[uri, range]`` from an executeCommand request (JSON objects, not yet typed); InfillError if malformed."""
    if not isinstance(arguments, list) or len(arguments) < 2 or not isinstance(arguments[0], str):
        raise InfillError("expected arguments [uri, range]")
    raw = arguments[1]
    try:
        start, end = raw["start"], raw["end"]
        values = [start["line"], start["character"], end["line"], end["character"]]
    except (TypeError, KeyError) as exc:
        raise InfillError(f"malformed range {raw!r:.100}") from exc
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in values):
        raise InfillError(f"malformed range {raw!r:.100}")
    return arguments[0], lsp.Range(start=lsp.Position(line=values[0], character=values[1]),
                                   end=lsp.Position(line=values[2], character=values[3]))


def message_type(level: str) -> lsp.MessageType:
    return {"error": lsp.MessageType.Error, "warning": lsp.MessageType.Warning}.get(level, lsp.MessageType.Info)
