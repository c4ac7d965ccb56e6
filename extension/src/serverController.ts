// Owns the language client: starts codellama-lsp over stdio, restarts it on request and (a bounded number
// of times) after a crash, stops it, and wires the custom protocol and middleware to the editor.
import { ChildProcess, spawn } from "child_process";
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  Middleware,
  ShowMessageNotification,
  ShowMessageParams,
  State,
} from "vscode-languageclient/node";
import { editorMiddleware } from "./clientMiddleware";
import { DiffReview } from "./diffReview";
import { ExplanationStore } from "./explanations";
import { ExplanationView } from "./explanationView";
import { CodeActionCommandArgs, ExplanationNotificationMethod, ExplanationParams, ServerCommands, StatusNotificationMethod, StatusParams } from "./protocol";
import { commandExists, resolveServerCommand, ServerCommand } from "./serverPath";
import { configurationChange, MappedSettings } from "./settings";
import { describeProblem, FailureEvidence, LineTail, RestartPolicy, StartupProblem } from "./startupProblem";
import { StatusTracker } from "./status";
import { StatusBar } from "./statusBar";

/**
 * The language client, except that its own error popups ("couldn't create connection to server", once per
 * restart of a crashing server) go to the log only: the extension shows one notification per problem itself.
 */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | "force"): void {
    super.error(message, data, false);
  }
}

/** The user-facing name of a server command, for messages. */
function commandTitle(command: string): string {
  const titles: Record<string, string> = { [ServerCommands.explain]: "Explain", [ServerCommands.fix]: "Fix", [ServerCommands.generateDocs]: "Generate docs", [ServerCommands.generateTests]: "Generate tests" };
  return titles[command] ?? command;
}

export class ServerController implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private process: ChildProcess | undefined;
  private server: ServerCommand | undefined;
  private lastExitCode: number | null | undefined;
  private stopping = false;
  private readonly stderrTail = new LineTail();
  private readonly restarts = new RestartPolicy();
  private explainRuns = 0;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    private readonly tracker: StatusTracker,
    private readonly statusBar: StatusBar,
    private readonly explanations: ExplanationStore,
    private readonly explanationView: ExplanationView,
    private readonly diffReview: DiffReview,
    private readonly settings: () => MappedSettings,
  ) {}

  get isRunning(): boolean {
    return this.client?.state === State.Running;
  }

  async start(): Promise<void> {
    if (this.client !== undefined) return;
    const settings = this.settings();
    for (const warning of settings.warnings) this.log.warn(warning);
    const server = resolveServerCommand(settings.client.serverPath, this.context.extensionPath);
    this.server = server;
    this.log.info(`Starting ${server.command} ${[...server.args, "--stdio"].join(" ")} (found through ${server.source}).`);
    this.stopping = false;
    this.setPhase("starting");
    if (!commandExists(server.command)) {
      this.fail({ command: server.command, spawnErrorCode: "ENOENT" }, `${server.command} was not found`);
      return;
    }

    const client = new QuietLanguageClient("codellama", "CodeLlama LSP", () => this.spawnServer(server), this.clientOptions());
    client.onNotification(StatusNotificationMethod, (params: StatusParams) => this.onStatus(params));
    client.onNotification(ExplanationNotificationMethod, (params: ExplanationParams) => void this.explanationView.show(this.explanations.apply(params)));
    client.onNotification(ShowMessageNotification.type, (params) => this.onShowMessage(params));
    client.onDidChangeState((change) => {
      if (change.newState === State.Running) this.setPhase("running");
    });
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.client = undefined;
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      this.fail({ command: server.command, spawnErrorCode: code, exitCode: this.lastExitCode, stderrTail: this.stderrTail.toString() }, error);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    this.stopping = true;
    try {
      if (client.state !== State.Stopped) await client.stop(5_000);
    } catch (error) {
      this.log.warn(`The server did not stop cleanly: ${String(error)}`);
      this.process?.kill();
    } finally {
      await client.dispose().catch(() => undefined);
      this.setPhase("stopped");
    }
  }

  /** The user's restart: forgets earlier crashes, so automatic restarts are allowed again. */
  async restart(): Promise<void> {
    this.restarts.reset();
    await this.stop();
    await this.start();
  }

  /** Sends changed settings to a running server. */
  async sendSettings(settings: MappedSettings): Promise<void> {
    for (const warning of settings.warnings) this.log.warn(warning);
    if (this.client?.state !== State.Running) return;
    await this.client.sendNotification("workspace/didChangeConfiguration", configurationChange(settings.server));
  }

  /** Runs a server code action command on a range (the context menu entries use this). */
  async runServerCommand(command: string, args: CodeActionCommandArgs): Promise<unknown> {
    const client = this.client;
    if (client === undefined || client.state !== State.Running) {
      void vscode.window.showWarningMessage("CodeLlama: the server is not running.", "Show Log").then((pick) => pick && this.log.show());
      return undefined;
    }
    return this.aroundServerCommand(command, [args], () => client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] }));
  }

  private clientOptions(): LanguageClientOptions {
    const middleware: Middleware = {
      ...editorMiddleware(() => this.settings(), this.diffReview),
      executeCommand: (command, args, next) => this.aroundServerCommand(command, args, () => next(command, args)),
    };
    return {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: () => this.settings().server,
      outputChannel: this.log,
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never: the status bar and notifications say when to look */,
      middleware,
      stdioOptions: {
        stdout: () => undefined,
        stderr: (input, output) => {
          let partial = "";
          input.setEncoding("utf8");
          input.on("data", (chunk: string) => {
            const lines = (partial + chunk).split(/\r?\n/);
            partial = lines.pop() ?? "";
            for (const line of lines) {
              this.stderrTail.push(line);
              if (/\b(fail|error|exception|fatal)/i.test(line)) output.error(line);
              else if (/\bwarn/i.test(line)) output.warn(line);
              else output.info(line);
            }
          });
        },
      },
      errorHandler: {
        error: (_error, _message, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true }),
        closed: () => this.onConnectionClosed(),
      },
      connectionOptions: { maxRestartCount: this.restarts.maxRestarts },
      markdown: { isTrusted: false },
    };
  }

  private async spawnServer(server: ServerCommand): Promise<ChildProcess> {
    this.stderrTail.clear();
    this.lastExitCode = undefined;
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? this.context.extensionPath;
    const child = spawn(server.command, [...server.args, "--stdio"], { cwd, env: process.env, stdio: "pipe" });
    this.process = child;
    child.on("exit", (code, signal) => {
      this.lastExitCode = code;
      this.log.info(`The server process exited (${code === null ? `signal ${signal}` : `code ${code}`}).`);
    });
    // Wait for the spawn to succeed, so a missing dotnet or server surfaces as ENOENT from start().
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    return child;
  }

  private onConnectionClosed(): { action: CloseAction; handled: boolean } {
    if (this.stopping) return { action: CloseAction.DoNotRestart, handled: true };
    const evidence: FailureEvidence = { command: this.server?.command ?? "codellama-lsp", exitCode: this.lastExitCode, stderrTail: this.stderrTail.toString() };
    if (this.restarts.shouldRestart(Date.now())) {
      this.log.warn(`The server stopped unexpectedly (exit code ${String(this.lastExitCode)}); restarting it.`);
      this.setPhase("restarting");
      return { action: CloseAction.Restart, handled: true };
    }
    this.client = undefined;
    this.fail(evidence, `it stopped ${this.restarts.maxRestarts + 1} times within ${this.restarts.windowMs / 60_000} minutes`);
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private onStatus(params: StatusParams): void {
    const newError = this.tracker.onStatus(params);
    this.statusBar.refresh();
    if (newError !== undefined) {
      this.log.error(`Server status: ${newError}`);
      void this.notify(describeProblem({ command: this.server?.command ?? "codellama-lsp", statusMessage: newError }));
    }
  }

  /** Shows the server's messages as the client would, except the explanation it repeats for other clients. */
  private onShowMessage(params: ShowMessageParams): void {
    if (params.type === MessageType.Info && this.explanations.isEcho(params.message)) {
      this.log.debug("The final explanation is in the explanation view; its window/showMessage copy is not shown.");
      return;
    }
    if (this.tracker.isNotifiedError(params.message)) {
      this.log.warn(params.message);
      return;
    }
    switch (params.type) {
      case MessageType.Error:
        void vscode.window.showErrorMessage(params.message);
        break;
      case MessageType.Warning:
        void vscode.window.showWarningMessage(params.message);
        break;
      default:
        void vscode.window.showInformationMessage(params.message);
    }
  }

  /**
   * Explain opens its view as soon as the server streams; its final result completes the run. A failed
   * command is shown to the user with the server's reason (and resolves to undefined) instead of failing quietly.
   */
  private async aroundServerCommand<T>(command: string, args: unknown[], run: () => Promise<T>): Promise<T | undefined> {
    let result: T;
    try {
      result = await run();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.log.error(`${command} failed: ${reason}`);
      void vscode.window.showErrorMessage(`CodeLlama: ${commandTitle(command)} failed: ${reason.replace(/^.*? failed: /, "")}`, "Show Log").then((pick) => pick && this.log.show());
      return undefined;
    }
    if (command !== ServerCommands.explain) return result;
    const target = args[0] as CodeActionCommandArgs | undefined;
    const markdown = (result as { markdown?: unknown } | undefined)?.markdown;
    if (target !== undefined && typeof markdown === "string") {
      await this.explanationView.show(this.explanations.complete(target.uri, target.range, markdown, `client-${++this.explainRuns}`));
    }
    return result;
  }

  private fail(evidence: FailureEvidence, error: unknown): void {
    const problem = describeProblem(evidence);
    this.log.error(`The server could not run: ${error instanceof Error ? error.message : String(error)}`);
    this.setPhase("failed", problem.message);
    void this.notify(problem);
  }

  private async notify(problem: StartupProblem): Promise<void> {
    const labels: Record<string, string> = { showLog: "Show Log", openSettings: "Open Settings", installDotnet: "Get .NET", useCpu: "Use CPU", restart: "Restart" };
    const pick = await vscode.window.showErrorMessage(problem.message, ...problem.actions.map((action) => labels[action]));
    const action = problem.actions.find((candidate) => labels[candidate] === pick);
    switch (action) {
      case "showLog":
        this.log.show();
        break;
      case "openSettings":
        await vscode.commands.executeCommand("workbench.action.openSettings", "codellama");
        break;
      case "installDotnet":
        await vscode.env.openExternal(vscode.Uri.parse("https://dot.net"));
        break;
      case "useCpu":
        await vscode.workspace.getConfiguration("codellama").update("device", "cpu", vscode.ConfigurationTarget.Global);
        break;
      case "restart":
        await this.restart();
        break;
    }
  }

  private setPhase(phase: Parameters<StatusTracker["setPhase"]>[0], failure?: string): void {
    this.tracker.setPhase(phase, failure);
    this.statusBar.refresh();
  }

  dispose(): void {
    void this.stop();
  }
}
