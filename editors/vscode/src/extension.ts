/**
 * VS Code edge of the extension: starts `infill serve` through vscode-languageclient (which maps
 * LSP inline completion, code actions and commands to VS Code by itself), and adds the editor
 * commands, the status bar item and settings sync. The logic lives in the pure modules beside it.
 */
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  TransportKind,
  WorkspaceEdit,
} from 'vscode-languageclient/node';
import { CommandInputError, EditorCommand, commandFailure, executeCommandParams, isWorkspaceEdit } from './commands';
import {
  ClientSettings,
  documentSelector,
  needsRestart,
  readSettings,
  servedLanguages,
  serverCommand,
  serverOptions,
} from './settings';
import { ClientState, ProgressValue, SERVER_STATUS_METHOD, StatusModel, parseServerStatus } from './status';

const SECTION = 'infill';

const STATES: Record<State, ClientState> = {
  [State.Starting]: 'starting',
  [State.Running]: 'running',
  [State.Stopped]: 'stopped',
  [State.StartFailed]: 'startFailed',
};

/** One extension instance: the client, its settings, the status bar item. */
class InfillExtension implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private settings: ClientSettings;
  private readonly status = new StatusModel();
  private readonly statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  private readonly output = vscode.window.createOutputChannel('Diffusion Infill', { log: true });

  constructor() {
    this.settings = this.loadSettings();
    this.statusItem.name = 'Diffusion Infill';
    this.statusItem.command = 'diffusionInfill.showOutput';
    this.render();
    this.statusItem.show();
  }

  /** Reads `infill.*`; each invalid setting is reported once and falls back to its default. */
  private loadSettings(): ClientSettings {
    const config = vscode.workspace.getConfiguration(SECTION);
    const { settings, problems } = readSettings((key) => config.get(key));
    for (const problem of problems) {
      this.output.warn(problem);
      void vscode.window.showWarningMessage(`Infill: ${problem}`);
    }
    return settings;
  }

  private render(): void {
    const view = this.status.view();
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    // Also names the state for screen readers (and for the end-to-end test's selector).
    this.statusItem.accessibilityInformation = { label: `Infill: ${view.kind}`, role: 'button' };
    this.statusItem.backgroundColor =
      view.kind === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.kind === 'cut'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  async start(): Promise<void> {
    const { command, args } = serverCommand(this.settings);
    const server: ServerOptions = { command, args, transport: TransportKind.stdio };
    const options: LanguageClientOptions = {
      documentSelector: documentSelector(servedLanguages(this.settings)),
      initializationOptions: serverOptions(this.settings),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      middleware: {
        handleWorkDoneProgress: (token, params, next) => {
          this.status.progress(token, params as ProgressValue);
          this.render();
          next(token, params);
        },
        // VS Code shows the server's inline completions already; the list is opt-in.
        provideCompletionItem: (document, position, context, token, next) =>
          this.settings.completionList ? next(document, position, context, token) : undefined,
      },
    };
    const client = new LanguageClient('infill', 'Diffusion Infill', server, options);
    // Registered before start(): the client installs it on the connection it opens.
    client.onNotification(SERVER_STATUS_METHOD, (params: unknown) => {
      const status = parseServerStatus(params);
      if (typeof status === 'string') {
        this.output.warn(`Ignored an ${SERVER_STATUS_METHOD} notification: ${status}`);
        return;
      }
      this.status.serverStatus(status);
      this.render();
    });
    client.onDidChangeState((event) => {
      this.status.clientState(STATES[event.newState]);
      this.render();
    });
    this.client = client;
    this.output.info(`Starting ${command} ${args.join(' ')}`);
    try {
      await client.start();
    } catch (error) {
      this.status.fail(`Could not start \`${command} ${args.join(' ')}\`: ${String(error)}`);
      this.render();
      this.output.error(String(error));
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    this.status.stopping();
    try {
      await client.stop();
    } catch (error) {
      this.output.warn(`Stopping the server: ${String(error)}`);
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Settings changed: restart for a new command line or languages, otherwise push them. */
  async configurationChanged(): Promise<void> {
    const before = this.settings;
    this.settings = this.loadSettings();
    if (needsRestart(before, this.settings)) {
      await this.restart();
    } else if (this.client?.isRunning()) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: serverOptions(this.settings),
      });
    }
  }

  /** Runs one of the server's edit commands on the active editor's selection. */
  async runEditorCommand(command: EditorCommand): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined) {
      void vscode.window.showInformationMessage('Infill: open a file first.');
      return;
    }
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      void vscode.window.showErrorMessage('Infill: the server is not running (see the status bar).');
      return;
    }
    let params;
    try {
      params = executeCommandParams(command, editor.document.uri.toString(), client.code2ProtocolConverter.asRange(editor.selection));
    } catch (error) {
      if (error instanceof CommandInputError) {
        void vscode.window.showInformationMessage(`Infill: ${error.message}`);
        return;
      }
      throw error;
    }
    // The server usually applies its edit with workspace/applyEdit; apply a returned edit too.
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'Infill' },
      () => client.sendRequest(ExecuteCommandRequest.type, params),
    );
    if (isWorkspaceEdit(result)) {
      await vscode.workspace.applyEdit(await client.protocol2CodeConverter.asWorkspaceEdit(result as WorkspaceEdit));
    }
    const failure = commandFailure(result);
    if (failure !== undefined) void vscode.window.showInformationMessage(`Infill: ${failure}`);
  }

  showOutput(): void {
    this.output.show(true);
  }

  dispose(): void {
    this.statusItem.dispose();
    this.output.dispose();
  }
}

let extension: InfillExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const ext = new InfillExtension();
  extension = ext;
  context.subscriptions.push(
    ext,
    vscode.commands.registerCommand('diffusionInfill.rewriteSelection', () => ext.runEditorCommand('rewriteSelection')),
    vscode.commands.registerCommand('diffusionInfill.fillMiddle', () => ext.runEditorCommand('fillMiddle')),
    vscode.commands.registerCommand('diffusionInfill.restartServer', () => ext.restart()),
    vscode.commands.registerCommand('diffusionInfill.showOutput', () => ext.showOutput()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(SECTION)) void ext.configurationChanged();
    }),
  );
  await ext.start();
}

export async function deactivate(): Promise<void> {
  await extension?.stop();
  extension = undefined;
}
