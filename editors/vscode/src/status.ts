/**
 * The status bar item's state machine: client state changes and the server's `$/progress`
 * (model loading) go in, the text, tooltip and kind to show come out.
 *
 * Pure: no `vscode` import, so the unit tests run under plain Node.
 */

export type ClientState = 'starting' | 'running' | 'stopped' | 'startFailed';
export type StatusKind = 'starting' | 'loading' | 'ready' | 'error' | 'stopped';

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
  private expectStop = false;

  /** The client changed state; an unexpected stop is an error. */
  clientState(state: ClientState): void {
    if (state === 'starting') {
      this.error = undefined;
      this.tasks.clear();
    } else if (state === 'startFailed') {
      this.error ??= 'The server failed to start.';
    } else if (state === 'stopped') {
      this.tasks.clear();
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
    const task = [...this.tasks.values()].at(-1);
    if (task) {
      const percent = task.percentage === undefined ? '' : ` ${Math.round(task.percentage)}%`;
      const detail = task.message ? `: ${task.message}` : '';
      return { kind: 'loading', text: `$(sync~spin) Infill${percent}`, tooltip: `Infill: ${task.title}${detail}` };
    }
    return { kind: 'ready', text: '$(check) Infill', tooltip: 'Infill: ready.' };
  }
}
