/** Unit tests for status.ts: client states and $/progress into loading / ready / error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatusModel } from '../status';

test('starting, then loading with progress, then ready', () => {
  const status = new StatusModel();
  assert.equal(status.view().kind, 'stopped');
  status.clientState('starting');
  assert.equal(status.view().kind, 'starting');
  status.clientState('running');
  assert.equal(status.view().kind, 'ready');
  status.progress('load', { kind: 'begin', title: 'Loading model', percentage: 0 });
  status.progress('load', { kind: 'report', message: 'weights', percentage: 42.4 });
  const loading = status.view();
  assert.equal(loading.kind, 'loading');
  assert.match(loading.text, /42%/);
  assert.match(loading.tooltip, /Loading model: weights/);
  status.progress('load', { kind: 'end' });
  assert.equal(status.view().kind, 'ready');
});

test('a report for an unknown token is ignored', () => {
  const status = new StatusModel();
  status.clientState('running');
  status.progress(7, { kind: 'report', percentage: 10 });
  assert.equal(status.view().kind, 'ready');
});

test('a failed start and an unexpected stop are errors; a requested stop is not', () => {
  const failed = new StatusModel();
  failed.clientState('starting');
  failed.clientState('startFailed');
  assert.equal(failed.view().kind, 'error');

  const crashed = new StatusModel();
  crashed.clientState('running');
  crashed.clientState('stopped');
  assert.equal(crashed.view().kind, 'error');
  crashed.clientState('starting');
  assert.equal(crashed.view().kind, 'starting', 'a restart clears the error');

  const stopped = new StatusModel();
  stopped.clientState('running');
  stopped.stopping();
  stopped.clientState('stopped');
  assert.equal(stopped.view().kind, 'stopped');
});

test('fail() shows the message', () => {
  const status = new StatusModel();
  status.fail('Could not start `infill serve`: ENOENT');
  const view = status.view();
  assert.equal(view.kind, 'error');
  assert.match(view.tooltip, /ENOENT/);
});
