// Drives VS Code (code-server) in headless Chromium through playwright-core, as a person would:
// open a Python file, type, wait for the extension's inline suggestion (ghost text), take a
// screenshot, accept it with Tab and save. Prints one JSON line with what it saw; the pytest in
// tests/editors/test_vscode.py reads the saved file back from disk and checks it.
//
// usage: node drive.mjs '{"url": ..., "folder": ..., "file": "sample.py", "line": 9, "column": 14, "type": "...",
//                         "screenshot": "out.png", "timeoutMs": 240000}'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const opts = JSON.parse(process.argv[2]);
const timeout = opts.timeoutMs ?? 240000;
const result = { steps: [], ghostText: null, statusText: null, error: null };
const step = (name) => {
  result.steps.push(name);
  process.stderr.write(`[drive] ${name}\n`);
};

const browser = await chromium.launch({
  executablePath: opts.chromium ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.setDefaultTimeout(timeout);
const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

/** Run a command from the palette (F1) by its title, once the palette lists it. */
async function runCommand(title) {
  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget input').waitFor();
  await page.keyboard.type(title);
  await page.locator('.quick-input-list .monaco-list-row').first().waitFor();
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter');
}

/** The text of the status bar item of the extension (its text starts with an icon, then "Infill"). */
async function statusText() {
  const items = await page.locator('.statusbar-item').allInnerTexts();
  return items.map((t) => t.trim()).find((t) => /Infill/.test(t)) ?? null;
}

/** The status bar item's tooltip: its title attribute, or the hover VS Code draws for it. */
async function statusTooltip() {
  const item = page.locator('[aria-label^="Infill: "]').first();
  const title = await item.getAttribute('title').catch(() => null);
  if (title) return title;
  await item.hover();
  const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'Infill' }).first();
  try {
    await hover.waitFor({ timeout: 5000 });
    return (await hover.innerText()).trim();
  } catch {
    return null;
  } finally {
    await page.mouse.move(600, 400);
    await page.keyboard.press('Escape');
  }
}

try {
  step('open workbench');
  await page.goto(`${opts.url}/?folder=${encodeURIComponent(opts.folder)}`);
  await page.locator('.monaco-workbench').waitFor();

  step('open file');
  // Quick Open is the most stable way in: the explorer tree's DOM changes between versions.
  await page.locator('.monaco-workbench').click({ position: { x: 600, y: 400 } });
  await page.keyboard.press(`${mod}+P`);
  await page.locator('.quick-input-widget input').waitFor();
  await page.keyboard.type(opts.file);
  await page.locator(`.quick-input-list .monaco-list-row[aria-label*="${opts.file}"]`).first().waitFor();
  await page.keyboard.press('Enter');
  const editor = page.locator(`.editor-instance .monaco-editor[data-uri$="${opts.file}"]`);
  await editor.waitFor();

  step('wait for the server: status bar item goes to ready');
  // The item's aria-label is "Infill: <kind>" (starting, loading, ready, error, stopped).
  result.statusKinds = [];
  const statusDeadline = Date.now() + timeout;
  for (;;) {
    const labels = await page.locator('[aria-label^="Infill: "]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    const kind = labels.length ? labels[0].slice('Infill: '.length) : null;
    if (kind && result.statusKinds.at(-1) !== kind) result.statusKinds.push(kind);
    if (kind === (opts.expectStatus ?? 'ready')) break;
    if (kind === 'error' && opts.expectStatus !== 'error') throw new Error(`status bar shows an error: ${await statusText()}`);
    if (Date.now() > statusDeadline) throw new Error(`server not ready within ${timeout} ms; states ${result.statusKinds}`);
    await page.waitForTimeout(100);
  }
  result.statusText = await statusText();
  result.statusTooltip = await statusTooltip();
  if (opts.expectStatus) {
    // Only the status bar is under test (e.g. the error shown when the server cannot start).
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
    step('done');
    await browser.close();
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  }

  step('go to line:column (1-based) and type');
  await editor.locator('.view-lines').click();
  await page.keyboard.press(`${mod}+G`);
  await page.keyboard.type(`${opts.line}:${opts.column}`);
  await page.keyboard.press('Enter');
  await page.keyboard.type(opts.type, { delay: 40 });

  step('wait for ghost text');
  const ghost = editor.locator('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text');
  const deadline = Date.now() + timeout;
  // Typing requests a suggestion by itself; if none shows (the server may decline one), ask again
  // explicitly with the "Trigger Inline Suggestion" command, as a user would.
  result.explicitTriggers = 0;
  let next = Date.now() + 15000;
  while (!(await ghost.first().isVisible())) {
    if (Date.now() > deadline) throw new Error(`no ghost text within ${timeout} ms; status: ${await statusText()}`);
    if (Date.now() > next) {
      await page.keyboard.press('F1');
      await page.locator('.quick-input-widget input').waitFor();
      await page.keyboard.type('Trigger Inline Suggestion');
      await page.waitForTimeout(500);
      await page.keyboard.press('Enter');
      result.explicitTriggers += 1;
      next = Date.now() + 15000;
    }
    await page.waitForTimeout(250);
  }
  result.ghostText = (await ghost.allInnerTexts()).join('\n');
  result.statusText = await statusText();
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot });

  step('accept with Tab and save');
  await page.keyboard.press('Tab');
  await page.waitForTimeout(300);
  result.ghostAfterTab = await ghost.count();
  // a fast server may already show the next suggestion at the new cursor: keep its text to compare
  result.ghostTextAfterTab = result.ghostAfterTab ? (await ghost.allInnerTexts()).join('\n') : '';
  await page.keyboard.press(`${mod}+S`);
  await page.waitForTimeout(1000);

  // Commands to try in turn until one edits the file: the server refuses a rewrite that adds parse
  // errors ("Infill: nothing changed (...)"), and where a small model gets one right varies.
  // e.g. [{"title": "Infill: Rewrite selection", "line": 11, "column": 13, "selectChars": 6, "original": "..."}]
  const commands = opts.commands ?? [];
  result.commandRefusals = [];
  for (const [index, c] of commands.entries()) {
    step(`select ${c.selectChars} chars at ${c.line}:${c.column}, run "${c.title}"`);
    await page.keyboard.press(`${mod}+G`);
    await page.keyboard.type(`${c.line}:${c.column}`);
    await page.keyboard.press('Enter');
    for (let i = 0; i < c.selectChars; i++) await page.keyboard.press('Shift+ArrowRight');
    await runCommand(c.title);
    step('wait for the server edit (or its refusal)');
    const text = async () => (await editor.locator('.view-line').allInnerTexts()).join('\n').replace(/\u00a0/g, ' ');
    const refusal = async () =>
      (await page.locator('.notification-toast').allInnerTexts()).find((t) => /Infill: nothing changed/.test(t));
    const until = Date.now() + timeout;
    let refused;
    while ((await text()).includes(c.original)) {
      if ((refused = await refusal())) break;
      if (Date.now() > until) {
        const toasts = await page.locator('.notification-toast').allInnerTexts();
        throw new Error(`"${c.title}" changed nothing within ${timeout} ms; notifications: ${JSON.stringify(toasts)}`);
      }
      await page.waitForTimeout(250);
    }
    if (refused) {
      result.commandRefusals.push(refused.replace(/\s+/g, ' ').trim());
      await page.keyboard.press('Escape');
      await runCommand('Notifications: Clear All Notifications');
      await page.locator('.notification-toast').first().waitFor({ state: 'detached' }).catch(() => {});
      continue;
    }
    if (opts.commandScreenshot) await page.screenshot({ path: opts.commandScreenshot });
    await page.keyboard.press(`${mod}+S`);
    await page.waitForTimeout(1000);
    result.commandDone = true;
    result.commandIndex = index;
    break;
  }

  if (opts.settingsChange) {
    // Edit settings.json as a user would; the workbench must be open to push it to the extension.
    // {"file": ".../settings.json", "values": {...}, "logDir": "<user-data>/logs", "expect": "..."}
    const c = opts.settingsChange;
    step('change settings.json');
    writeFileSync(c.file, JSON.stringify({ ...JSON.parse(readFileSync(c.file, 'utf8')), ...c.values }, null, 2));
    const logText = () =>
      readdirSync(c.logDir, { recursive: true })
        .filter((f) => String(f).endsWith('Diffusion Infill.log'))
        .map((f) => readFileSync(join(c.logDir, String(f)), 'utf8'))
        .join('\n');
    const until = Date.now() + 30000;
    while (!logText().includes(c.expect) && Date.now() < until) await page.waitForTimeout(500);
    result.settingsPushed = logText().includes(c.expect);
  }
  step('done');
} catch (error) {
  result.error = String(error?.stack ?? error);
  const failureShot = opts.failureScreenshot ?? opts.screenshot?.replace(/\.png$/, '-failure.png');
  if (failureShot) await page.screenshot({ path: failureShot }).catch(() => {});
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.error ? 1 : 0);
