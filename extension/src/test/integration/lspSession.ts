// A headless stand-in for the extension's client, for the integration test: it starts the real server over
// stdio and drives it with the extension's own modules (settings mapping, protocol names, status tracking,
// inline item shaping, explanation store, edit review) where VS Code would otherwise sit.
import { ChildProcess, spawn } from "child_process";
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { WorkspaceEdit as ReviewedEdit, withReview, reviewLabel } from "../../editReview";
import { ExplanationStore } from "../../explanations";
import { ExplanationNotificationMethod, ExplanationParams, ServerSettings, StatusNotificationMethod, StatusParams } from "../../protocol";
import { ServerCommand } from "../../serverPath";
import { LineTail } from "../../startupProblem";
import { StatusTracker } from "../../status";

export interface ApplyEditSeen {
  label?: string;
  edit: ReviewedEdit;
  reviewed: ReviewedEdit;
}

export class LspSession {
  readonly tracker = new StatusTracker();
  readonly explanations = new ExplanationStore();
  readonly statuses: StatusParams[] = [];
  readonly messages: { type: number; message: string }[] = [];
  readonly appliedEdits: ApplyEditSeen[] = [];
  readonly stderr = new LineTail(200);
  private readonly process: ChildProcess;
  readonly connection: MessageConnection;
  private statusWaiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(server: ServerCommand, cwd: string) {
    this.process = spawn(server.command, [...server.args, "--stdio"], { cwd, stdio: "pipe" });
    this.exited = new Promise((resolve) => this.process.on("exit", (code) => resolve(code)));
    let partial = "";
    this.process.stderr!.setEncoding("utf8");
    this.process.stderr!.on("data", (chunk: string) => {
      const lines = (partial + chunk).split(/\r?\n/);
      partial = lines.pop() ?? "";
      for (const line of lines) this.stderr.push(line);
    });
    this.connection = createMessageConnection(new StreamMessageReader(this.process.stdout!), new StreamMessageWriter(this.process.stdin!));
    this.connection.onNotification(StatusNotificationMethod, (params: StatusParams) => {
      this.statuses.push(params);
      this.tracker.onStatus(params);
      const waiters = this.statusWaiters;
      this.statusWaiters = [];
      for (const wake of waiters) wake();
    });
    this.connection.onNotification(ExplanationNotificationMethod, (params: ExplanationParams) => {
      this.explanations.apply(params);
    });
    this.connection.onNotification("window/showMessage", (params: { type: number; message: string }) => {
      this.messages.push(params);
    });
    this.connection.onNotification("window/logMessage", () => undefined);
    this.connection.onNotification("$/progress", () => undefined);
    this.connection.onRequest("window/workDoneProgress/create", () => null);
    this.connection.onRequest("workspace/applyEdit", (params: { label?: string; edit: ReviewedEdit }) => {
      // What the extension's middleware does before VS Code's refactor preview; nothing is applied here.
      this.appliedEdits.push({ label: params.label, edit: params.edit, reviewed: withReview(params.edit, reviewLabel(params.label)) });
      return { applied: false, failureReason: "integration test: edits are checked, not applied" };
    });
    this.connection.listen();
  }

  async initialize(settings: ServerSettings, rootUri: string): Promise<{ capabilities: Record<string, unknown>; serverInfo?: { name: string; version?: string } }> {
    const result = await this.connection.sendRequest<{ capabilities: Record<string, unknown> }>("initialize", {
      processId: process.pid,
      clientInfo: { name: "codellama-lsp extension integration test" },
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: "test" }],
      initializationOptions: settings,
      capabilities: {
        window: { workDoneProgress: true, showMessage: {} },
        workspace: { applyEdit: true, configuration: true, workspaceEdit: { documentChanges: true, changeAnnotationSupport: { groupsOnLabel: true } } },
        textDocument: {
          synchronization: { dynamicRegistration: false },
          inlineCompletion: { dynamicRegistration: false },
          completion: { completionItem: { snippetSupport: true } },
          codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ["quickfix", "refactor", "refactor.rewrite", "source"] } } },
        },
        general: { positionEncodings: ["utf-16"] },
      },
    });
    await this.connection.sendNotification("initialized", {});
    return result;
  }

  /** Waits until the server reports one of `states`, or throws with the last status and stderr after `timeoutMs`. */
  async waitForState(states: string[], timeoutMs: number): Promise<StatusParams> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = this.statuses[this.statuses.length - 1];
      if (last !== undefined && states.includes(last.state)) return last;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no status in [${states.join(", ")}] within ${timeoutMs} ms; last ${JSON.stringify(last)}; stderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.statusWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async shutdown(): Promise<number | null> {
    try {
      await this.connection.sendRequest("shutdown");
      await this.connection.sendNotification("exit");
    } catch {
      this.process.kill();
    }
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 10_000).unref());
    const code = await Promise.race([this.exited, timeout]);
    this.connection.dispose();
    if (code === "timeout") {
      this.process.kill();
      throw new Error("the server did not exit within 10 s of shutdown/exit");
    }
    return code;
  }

  kill(): void {
    this.process.kill();
  }
}
