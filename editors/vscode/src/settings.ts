/**
 * The extension's settings: `infill.server.*`, `infill.vscode.*` and `infill.trace.server` belong to
 * the extension (how to start the server, editor-only switches); the flat `infill.<name>` settings
 * in SERVER_SETTINGS mirror the server's (lsp_server/settings.py) and are passed through as they
 * are: the server validates them and names any invalid one.
 *
 * Pure: no `vscode` import, so the unit tests run under plain Node.
 */

/** The server's settings (`infill.<name>`), read from initializationOptions and didChangeConfiguration. */
export const SERVER_SETTINGS = [
  'model',
  'device',
  'dtype',
  'steps',
  'speculate',
  'maxTokens',
  'threads',
  'copyPrior',
  'enable',
  'languages',
  'debounceMs',
  'latencyBudgetMs',
  'minConfidence',
  'maxSuggestions',
  'maxContextChars',
  'cacheSize',
  'workerAddress',
  'workerToken',
  'workspaceIndex',
  'workspaceMaxFiles',
  'workspaceMaxBytes',
  'relatedChars',
] as const;

/** The server's settings as the `infill` object it accepts: `{steps: 4, debounceMs: 100, ...}`. */
export type ServerSettings = Partial<Record<(typeof SERVER_SETTINGS)[number], unknown>>;

/** Everything the extension reads from `infill.*`. */
export interface ClientSettings {
  serverPath: string;
  pythonPath: string;
  extraArgs: string[];
  completionList: boolean;
  server: ServerSettings;
}

/** The server's languages (infill.syntax.LANGUAGES); the default of infill.languages. */
export const SERVER_LANGUAGES = ['python', 'javascript', 'typescript', 'tsx', 'go', 'rust', 'java', 'c', 'cpp'];

/** Defaults of the extension's own settings (the same as package.json; a test checks). */
export const CLIENT_DEFAULTS = {
  serverPath: 'infill',
  pythonPath: '',
  extraArgs: [] as string[],
  completionList: false,
};

/** Reads one setting below `infill.` (e.g. `server.path`, or a whole section like `model`). */
export type ConfigReader = (key: string) => unknown;

/** Settings plus one sentence per extension setting that was invalid and fell back to its default. */
export interface SettingsResult {
  settings: ClientSettings;
  problems: string[];
}

/** Reads `infill.*`; an invalid extension setting falls back to its default with a message. */
export function readSettings(get: ConfigReader): SettingsResult {
  const problems: string[] = [];
  const reject = <T>(key: string, value: unknown, expected: string, fallback: T): T => {
    problems.push(`Setting infill.${key} is ${JSON.stringify(value)}, expected ${expected}; using ${JSON.stringify(fallback)}.`);
    return fallback;
  };
  const string = (key: string, fallback: string): string => {
    const value = get(key);
    if (value === undefined || value === null) return fallback;
    return typeof value === 'string' ? value.trim() : reject(key, value, 'a string', fallback);
  };
  const strings = (key: string, fallback: string[]): string[] => {
    const value = get(key);
    if (value === undefined || value === null) return [...fallback];
    return Array.isArray(value) && value.every((item) => typeof item === 'string')
      ? [...value]
      : reject(key, value, 'a list of strings', [...fallback]);
  };
  const boolean = (key: string, fallback: boolean): boolean => {
    const value = get(key);
    if (value === undefined || value === null) return fallback;
    return typeof value === 'boolean' ? value : reject(key, value, 'true or false', fallback);
  };

  const server: ServerSettings = {};
  for (const name of SERVER_SETTINGS) {
    const value = get(name);
    if (value !== undefined) server[name] = JSON.parse(JSON.stringify(value)) as unknown;
  }
  const d = CLIENT_DEFAULTS;
  const settings: ClientSettings = {
    serverPath: string('server.path', d.serverPath) || d.serverPath,
    pythonPath: string('server.pythonPath', d.pythonPath),
    extraArgs: strings('server.extraArgs', d.extraArgs),
    completionList: boolean('vscode.completionList', d.completionList),
    server,
  };
  return { settings, problems };
}

/** The command line that starts the server over stdio. */
export function serverCommand(settings: ClientSettings): { command: string; args: string[] } {
  if (settings.pythonPath) {
    return { command: settings.pythonPath, args: ['-m', 'diffusion_infill', 'serve', ...settings.extraArgs] };
  }
  return { command: settings.serverPath, args: ['serve', ...settings.extraArgs] };
}

/** initializationOptions and didChangeConfiguration `settings`: the server sections under `infill`. */
export function serverOptions(settings: ClientSettings): { infill: ServerSettings } {
  return { infill: settings.server };
}

/** VS Code language ids for each server language name (the server maps the ids back itself). */
const VSCODE_LANGUAGE_IDS: Record<string, string[]> = {
  javascript: ['javascript', 'javascriptreact'],
  tsx: ['typescriptreact'],
};

/** The languages served: `infill.languages` when it is a list of strings, else all. */
export function servedLanguages(settings: ClientSettings): string[] {
  const value = settings.server.languages;
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : SERVER_LANGUAGES;
}

/** The language client's document selector: saved and untitled files of each served language. */
export function documentSelector(languages: string[]): { scheme: string; language: string }[] {
  const ids = new Set<string>();
  for (const language of languages) {
    const key = language.trim().toLowerCase();
    for (const id of VSCODE_LANGUAGE_IDS[key] ?? [key]) ids.add(id);
  }
  return [...ids].flatMap((language) => [
    { scheme: 'file', language },
    { scheme: 'untitled', language },
  ]);
}

/** True when a change takes effect only by restarting the server (its command line or the selector). */
export function needsRestart(before: ClientSettings, after: ClientSettings): boolean {
  const key = (s: ClientSettings) => JSON.stringify([s.serverPath, s.pythonPath, s.extraArgs, servedLanguages(s)]);
  return key(before) !== key(after);
}
