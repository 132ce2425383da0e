/** Unit tests for status.ts: client states, $/progress and infill/status into what the item shows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerStatus, StatusModel, parseServerStatus } from '../status';

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

function serverStatus(state: ServerStatus['state'], message = '', served = 0, empty = 0, cut = 0): ServerStatus {
  const status = parseServerStatus({ state, message, served, empty, cut });
  assert.notEqual(typeof status, 'string', String(status));
  return status as ServerStatus;
}

function running(): StatusModel {
  const status = new StatusModel();
  status.clientState('starting');
  status.clientState('running');
  return status;
}

test('each infill/status state: kind, text and a tooltip with the message and counters', () => {
  const cases: [ServerStatus, string, RegExp][] = [
    [serverStatus('loading', 'loading model (42%)'), 'loading', /^\$\(sync~spin\) Infill 42%$/],
    [serverStatus('loading', 'starting the model worker'), 'loading', /^\$\(sync~spin\) Infill$/],
    [serverStatus('ready', 'ready (float32, 2 threads)', 3, 1, 0), 'ready', /^\$\(check\) Infill$/],
    [serverStatus('busy', 'filling', 3, 1, 0), 'busy', /^\$\(loading~spin\) Infill$/],
    [serverStatus('cut', 'last answer cut by the 2000 ms latency budget', 4, 1, 3), 'cut', /^\$\(watch\) Infill cut ×3$/],
    [serverStatus('restarting', 'worker restarting'), 'restarting', /Infill restarting$/],
    [serverStatus('error', 'model worker did not start'), 'error', /^\$\(error\) Infill$/],
  ];
  for (const [params, kind, text] of cases) {
    const status = running();
    status.serverStatus(params);
    const view = status.view();
    assert.equal(view.kind, kind, params.state);
    assert.match(view.text, text, params.state);
    assert.ok(view.tooltip.startsWith(`Infill: ${params.message}\n`), view.tooltip);
    assert.ok(
      view.tooltip.includes(`${params.served} served, ${params.empty} empty, ${params.cut} cut by the latency budget`),
      view.tooltip,
    );
  }
  const cut = running();
  cut.serverStatus(serverStatus('cut', 'cut', 0, 0, 1));
  assert.match(cut.view().tooltip, /infill\.latencyBudgetMs/);
});

test('an open $/progress load shows over a server ready; error and restarting show over it', () => {
  const status = running();
  status.progress('load', { kind: 'begin', title: 'Loading model', percentage: 10 });
  status.serverStatus(serverStatus('ready', 'ready'));
  assert.equal(status.view().kind, 'loading');
  status.progress('load', { kind: 'end' });
  assert.equal(status.view().kind, 'ready');
  status.progress('again', { kind: 'begin', title: 'Loading model' });
  status.serverStatus(serverStatus('restarting', 'worker restarting'));
  assert.equal(status.view().kind, 'restarting');
  status.serverStatus(serverStatus('error', 'model worker did not start'));
  assert.equal(status.view().kind, 'error');
});

test('a client restart forgets the server status', () => {
  const status = running();
  status.serverStatus(serverStatus('cut', 'cut', 0, 0, 2));
  status.stopping();
  status.clientState('stopped');
  assert.equal(status.view().kind, 'stopped');
  status.clientState('starting');
  status.clientState('running');
  assert.equal(status.view().kind, 'ready');
  assert.equal(status.view().tooltip, 'Infill: ready.');
});

test('parseServerStatus: counters default to 0, malformed params are named', () => {
  assert.deepEqual(parseServerStatus({ state: 'ready' }), { state: 'ready', message: '', served: 0, empty: 0, cut: 0 });
  assert.match(String(parseServerStatus({ state: 'sleeping' })), /unknown state "sleeping"/);
  assert.match(String(parseServerStatus({ message: 'x' })), /unknown state/);
  assert.match(String(parseServerStatus({ state: 'ready', served: -1 })), /served is not a count/);
  assert.match(String(parseServerStatus({ state: 'ready', cut: 1.5 })), /cut is not a count/);
  assert.match(String(parseServerStatus('ready')), /not an object/);
  assert.match(String(parseServerStatus(null)), /not an object/);
  assert.match(String(parseServerStatus([])), /not an object/);
});
