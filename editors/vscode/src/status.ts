/**
 * The status bar item's state machine: client state changes, the server's `$/progress` (model
 * loading) and its `infill/status` notifications go in, the text, tooltip and kind to show come out.
 *
 * Pure: no `vscode` import, so the unit tests run under plain Node.
 */

export type ClientState = 'starting' | 'running' | 'stopped' | 'startFailed';
export type StatusKind = 'starting' | 'loading' | 'ready' | 'busy' | 'cut' | 'restarting' | 'error' | 'stopped';

/** The `infill/status` notification's method. */
export const SERVER_STATUS_METHOD = 'infill/status';

const SERVER_STATES = ['loading', 'ready', 'busy', 'cut', 'restarting', 'error'] as const;
export type ServerState = (typeof SERVER_STATES)[number];

/** `infill/status` params: the server's state, a short sentence, and counters since it started. */
export interface ServerStatus {
  state: ServerState;
  message: string;
  /** Requests answered with a suggestion. */
  served: number;
  /** Requests answered with no suggestion. */
  empty: number;
  /** Requests cut by the latency budget. */
  cut: number;
}

/** Checks `infill/status` params; a string saying what is wrong when they break the contract. */
export function parseServerStatus(params: unknown): ServerStatus | string {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return 'params are not an object';
  const p = params as Record<string, unknown>;
  if (!SERVER_STATES.includes(p.state as ServerState)) return `unknown state ${JSON.stringify(p.state)}`;
  const counts: Record<'served' | 'empty' | 'cut', number> = { served: 0, empty: 0, cut: 0 };
  for (const key of ['served', 'empty', 'cut'] as const) {
    const n = p[key];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return `${key} is not a count: ${JSON.stringify(n)}`;
    counts[key] = n;
  }
  return { state: p.state as ServerState, message: typeof p.message === 'string' ? p.message : '', ...counts };
}

/** The counters as one tooltip line. */
function counters(status: ServerStatus): string {
  return `${status.served} served, ${status.empty} empty, ${status.cut} cut by the latency budget`;
}

/** `$/progress` values (LSP WorkDoneProgressBegin / Report / End). */
export type ProgressValue =
  | { kind: 'begin'; title: string; message?: string; percentage?: number }
  | { kind: 'report'; message?: string; percentage?: number }
  | { kind: 'end'; message?: string };

export interface StatusView {
  kind: StatusKind;
  text: string;
  tooltip: string;
}

interface Task {
  title: string;
  message?: string;
  percentage?: number;
}

export class StatusModel {
  private state: ClientState = 'stopped';
  private error: string | undefined;
  private readonly tasks = new Map<string, Task>();
  private server: ServerStatus | undefined;
  private expectStop = false;

  /** The client changed state; an unexpected stop is an error. */
  clientState(state: ClientState): void {
    if (state === 'starting') {
      this.error = undefined;
      this.tasks.clear();
      this.server = undefined;
    } else if (state === 'startFailed') {
      this.error ??= 'The server failed to start.';
    } else if (state === 'stopped') {
      this.tasks.clear();
      this.server = undefined;
      if (this.state === 'running' && !this.expectStop) this.error ??= 'The server stopped.';
      this.expectStop = false;
    }
    this.state = state;
  }

  /** The user asked for a stop or restart: the next stop is not an error. */
  stopping(): void {
    this.expectStop = true;
  }

  /** A `$/progress` notification for `token`. */
  progress(token: string | number, value: ProgressValue): void {
    const key = String(token);
    if (value.kind === 'begin') {
      this.tasks.set(key, { title: value.title, message: value.message, percentage: value.percentage });
    } else if (value.kind === 'report') {
      const task = this.tasks.get(key);
      if (task) {
        if (value.message !== undefined) task.message = value.message;
        if (value.percentage !== undefined) task.percentage = value.percentage;
      }
    } else {
      this.tasks.delete(key);
    }
  }

  /** An `infill/status` notification, already checked by parseServerStatus(). */
  serverStatus(status: ServerStatus): void {
    this.server = status;
  }

  /** Something went wrong that the user should see (e.g. the server could not be spawned). */
  fail(message: string): void {
    this.error = message;
  }

  view(): StatusView {
    if (this.error !== undefined) {
      return { kind: 'error', text: '$(error) Infill', tooltip: `Infill: ${this.error} Click for the server output.` };
    }
    if (this.state === 'starting') {
      return { kind: 'starting', text: '$(sync~spin) Infill', tooltip: 'Infill: starting the server…' };
    }
    if (this.state === 'stopped' || this.state === 'startFailed') {
      return { kind: 'stopped', text: '$(circle-slash) Infill', tooltip: 'Infill: the server is not running.' };
    }
    const server = this.server;
    // The server's own error and restart win over a load still in progress; otherwise the load's
    // $/progress (which has the percentage) shows until it ends.
    if (server && (server.state === 'error' || server.state === 'restarting')) return serverView(server);
    const task = [...this.tasks.values()].at(-1);
    if (task) {
      const percent = task.percentage === undefined ? '' : ` ${Math.round(task.percentage)}%`;
      const detail = task.message ? `: ${task.message}` : '';
      return { kind: 'loading', text: `$(sync~spin) Infill${percent}`, tooltip: `Infill: ${task.title}${detail}` };
    }
    if (server) return serverView(server);
    return { kind: 'ready', text: '$(check) Infill', tooltip: 'Infill: ready.' };
  }
}

/** What to show for the server's last `infill/status`; the tooltip is its message and counters. */
function serverView(status: ServerStatus): StatusView {
  const tooltip = `Infill: ${status.message || status.state}\n${counters(status)}`;
  switch (status.state) {
    case 'loading': {
      const percent = /(\d+)%/.exec(status.message)?.[1];
      return { kind: 'loading', text: `$(sync~spin) Infill${percent ? ` ${percent}%` : ''}`, tooltip };
    }
    case 'ready':
      return { kind: 'ready', text: '$(check) Infill', tooltip };
    case 'busy':
      return { kind: 'busy', text: '$(loading~spin) Infill', tooltip };
    case 'cut':
      return {
        kind: 'cut',
        text: `$(watch) Infill cut ×${status.cut}`,
        tooltip: `${tooltip}\nThe setting infill.latencyBudgetMs gives each request more time.`,
      };
    case 'restarting':
      return { kind: 'restarting', text: '$(sync~spin) Infill restarting', tooltip };
    case 'error':
      return { kind: 'error', text: '$(error) Infill', tooltip: `${tooltip}\nClick for the server output.` };
  }
}
