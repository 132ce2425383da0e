/** Unit tests for settings.ts: validation, command line, options sent to the server, selector. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CLIENT_DEFAULTS,
  SERVER_LANGUAGES,
  SERVER_SETTINGS,
  documentSelector,
  needsRestart,
  readSettings,
  servedLanguages,
  serverCommand,
  serverOptions,
} from '../settings';

const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
const properties: Record<string, { default: unknown; markdownDescription?: string; type?: unknown }> =
  manifest.contributes.configuration.properties;

/** A reader over flat `infill.`-relative keys, answering whole sections like VS Code does. */
function reader(values: Record<string, unknown>) {
  return (key: string) => {
    if (key in values) return values[key];
    const prefix = `${key}.`;
    const section = Object.entries(values).filter(([k]) => k.startsWith(prefix));
    return section.length ? Object.fromEntries(section.map(([k, v]) => [k.slice(prefix.length), v])) : undefined;
  };
}

test('every contributed setting has a type, a default and a description', () => {
  for (const [name, spec] of Object.entries(properties)) {
    assert.ok(name.startsWith('infill.'), name);
    assert.ok(spec.type !== undefined, `${name} has no type`);
    assert.ok('default' in spec, `${name} has no default`);
    assert.ok((spec.markdownDescription ?? '').length > 10, `${name} has no description`);
  }
});

test('package.json defaults match the extension defaults', () => {
  assert.equal(properties['infill.server.path'].default, CLIENT_DEFAULTS.serverPath);
  assert.equal(properties['infill.server.pythonPath'].default, CLIENT_DEFAULTS.pythonPath);
  assert.deepEqual(properties['infill.server.extraArgs'].default, CLIENT_DEFAULTS.extraArgs);
  assert.equal(properties['infill.vscode.completionList'].default, CLIENT_DEFAULTS.completionList);
  assert.deepEqual(properties['infill.languages'].default, SERVER_LANGUAGES);
});

test('SERVER_SETTINGS are exactly the contributed settings that are not the extension\'s own', () => {
  const own = /^infill\.(server|vscode|trace)\./;
  const contributed = Object.keys(properties).filter((name) => !own.test(name)).map((name) => name.slice('infill.'.length));
  assert.deepEqual([...contributed].sort(), [...SERVER_SETTINGS].sort());
});

test('defaults when nothing is set', () => {
  const { settings, problems } = readSettings(() => undefined);
  assert.deepEqual(problems, []);
  assert.deepEqual(serverCommand(settings), { command: 'infill', args: ['serve'] });
  assert.deepEqual(serverOptions(settings), { infill: {} });
  assert.deepEqual(servedLanguages(settings), SERVER_LANGUAGES);
});

test('pythonPath runs the module, with extra args', () => {
  const { settings } = readSettings(reader({ 'server.pythonPath': ' /venv/bin/python ', 'server.extraArgs': ['--log', 'x'] }));
  assert.deepEqual(serverCommand(settings), {
    command: '/venv/bin/python',
    args: ['-m', 'diffusion_infill', 'serve', '--log', 'x'],
  });
});

test('invalid extension settings fall back and are named', () => {
  const { settings, problems } = readSettings(
    reader({ 'server.path': 42, 'server.extraArgs': 'oops', 'vscode.completionList': 'yes' }),
  );
  assert.equal(settings.serverPath, 'infill');
  assert.deepEqual(settings.extraArgs, []);
  assert.equal(settings.completionList, false);
  assert.equal(problems.length, 3);
  assert.match(problems[0], /infill\.server\.path/);
  assert.match(problems[1], /infill\.server\.extraArgs/);
  assert.match(problems[2], /infill\.vscode\.completionList/);
});

test('server sections pass through as the server reads them, and nothing else', () => {
  const { settings } = readSettings(
    reader({ steps: 4, maxTokens: 32, debounceMs: 10, model: null, 'server.path': 'x', 'trace.server': 'off' }),
  );
  assert.deepEqual(serverOptions(settings), { infill: { model: null, steps: 4, maxTokens: 32, debounceMs: 10 } });
});

test('document selector maps server language names to VS Code ids', () => {
  const selector = documentSelector(['python', 'javascript', 'tsx']);
  const ids = [...new Set(selector.map((s) => s.language))];
  assert.deepEqual(ids, ['python', 'javascript', 'javascriptreact', 'typescriptreact']);
  assert.deepEqual(new Set(selector.map((s) => s.scheme)), new Set(['file', 'untitled']));
});

test('languages come from infill.completion.languages when valid', () => {
  assert.deepEqual(servedLanguages(readSettings(reader({ 'languages': ['go'] })).settings), ['go']);
  assert.deepEqual(servedLanguages(readSettings(reader({ 'languages': 'go' })).settings), SERVER_LANGUAGES);
});

test('restart only for command line or language changes', () => {
  const base = readSettings(reader({ 'steps': 4 })).settings;
  assert.equal(needsRestart(base, readSettings(reader({ 'steps': 8 })).settings), false);
  assert.equal(needsRestart(base, readSettings(reader({ 'server.pythonPath': '/p' })).settings), true);
  assert.equal(needsRestart(base, readSettings(reader({ 'languages': ['c'] })).settings), true);
});
