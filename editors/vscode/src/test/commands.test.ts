/** Unit tests for commands.ts: executeCommand params and result handling. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandInputError, commandFailure, executeCommandParams, isWorkspaceEdit, ordered } from '../commands';

const at = (line: number, character: number) => ({ line, character });

test('rewrite sends the selection to infill.rewriteSelection', () => {
  const range = { start: at(1, 4), end: at(2, 0) };
  assert.deepEqual(executeCommandParams('rewriteSelection', 'file:///a.py', range), {
    command: 'infill.rewriteSelection',
    arguments: ['file:///a.py', range],
  });
});

test('rewrite with nothing selected is refused', () => {
  assert.throws(
    () => executeCommandParams('rewriteSelection', 'file:///a.py', { start: at(1, 4), end: at(1, 4) }),
    CommandInputError,
  );
});

test('fill in the middle works at a bare cursor', () => {
  const cursor = { start: at(3, 2), end: at(3, 2) };
  assert.deepEqual(executeCommandParams('fillMiddle', 'file:///a.py', cursor).arguments, ['file:///a.py', cursor]);
});

test('a backwards selection is ordered', () => {
  assert.deepEqual(ordered({ start: at(5, 1), end: at(2, 3) }), { start: at(2, 3), end: at(5, 1) });
  assert.deepEqual(ordered({ start: at(2, 9), end: at(2, 3) }), { start: at(2, 3), end: at(2, 9) });
});

test('workspace edits are recognised, other results are not', () => {
  assert.equal(isWorkspaceEdit({ changes: { 'file:///a.py': [] } }), true);
  assert.equal(isWorkspaceEdit({ documentChanges: [] }), true);
  assert.equal(isWorkspaceEdit(null), false);
  assert.equal(isWorkspaceEdit({ applied: true }), false);
  assert.equal(isWorkspaceEdit('done'), false);
});

test('a server result that applied nothing becomes a sentence', () => {
  assert.equal(commandFailure({ applied: false, reason: 'no suggestion' }), 'nothing changed (no suggestion).');
  assert.equal(commandFailure({ applied: false }), 'nothing changed.');
  assert.equal(commandFailure({ applied: true, version: 3 }), undefined);
  assert.equal(commandFailure(null), undefined);
});
