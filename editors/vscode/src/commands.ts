/**
 * The editor commands "Rewrite selection" and "Fill in the middle": which server command to run
 * with which arguments, and how to read its answer.
 *
 * Pure: no `vscode` import, so the unit tests run under plain Node.
 */

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** The server's `workspace/executeCommand` names (see lsp_server/server.py). */
export const SERVER_COMMANDS = {
  rewriteSelection: 'infill.rewriteSelection',
  fillMiddle: 'infill.fillMiddle',
} as const;

export type EditorCommand = keyof typeof SERVER_COMMANDS;

/** The user ran a command where it cannot apply (e.g. a rewrite with nothing selected). */
export class CommandInputError extends Error {}

/** `workspace/executeCommand` params for `command` on document `uri` with the editor's selection. */
export function executeCommandParams(
  command: EditorCommand,
  uri: string,
  selection: Range,
): { command: string; arguments: [string, Range] } {
  const empty = selection.start.line === selection.end.line && selection.start.character === selection.end.character;
  if (command === 'rewriteSelection' && empty) {
    throw new CommandInputError('Select the code to rewrite first.');
  }
  return { command: SERVER_COMMANDS[command], arguments: [uri, ordered(selection)] };
}

/** The range with start before end (a selection made backwards has them swapped). */
export function ordered(range: Range): Range {
  const { start, end } = range;
  const swapped = start.line > end.line || (start.line === end.line && start.character > end.character);
  return swapped ? { start: { ...end }, end: { ...start } } : { start: { ...start }, end: { ...end } };
}

/** True when a command's result is an LSP WorkspaceEdit the client must apply itself. */
export function isWorkspaceEdit(value: unknown): value is { changes?: object; documentChanges?: unknown[] } {
  if (typeof value !== 'object' || value === null) return false;
  const edit = value as { changes?: unknown; documentChanges?: unknown };
  return (
    (typeof edit.changes === 'object' && edit.changes !== null) || Array.isArray(edit.documentChanges)
  );
}

/** A sentence for the user when the server did not apply its edit (`{applied: false, reason}`). */
export function commandFailure(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || !('applied' in result)) return undefined;
  const { applied, reason } = result as { applied: unknown; reason?: unknown };
  if (applied !== false) return undefined;
  return typeof reason === 'string' && reason ? `nothing changed (${reason}).` : 'nothing changed.';
}
