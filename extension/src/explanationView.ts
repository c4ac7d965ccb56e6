// The side view for Explain: each run is a read-only virtual markdown document shown in VS Code's markdown
// preview beside the code, refreshed while the model writes (the text itself lives in ExplanationStore).
import * as path from "path";
import * as vscode from "vscode";
import { Explanation, ExplanationStore, ExplanationUpdate, renderExplanation } from "./explanations";

export const ExplanationScheme = "codellama-explanation";

/** How often the preview may refresh while tokens stream in; fast enough to read as live. */
const refreshIntervalMs = 150;

export class ExplanationView implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly uriByToken = new Map<string, vscode.Uri>();
  private readonly tokenByPath = new Map<string, string>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private runs = 0;

  constructor(
    private readonly store: ExplanationStore,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  provideTextDocumentContent(uri: vscode.Uri): string {
    const token = this.tokenByPath.get(uri.path);
    const explanation = token === undefined ? undefined : this.store.get(token);
    return explanation === undefined ? "# Explanation\n\n_This explanation is no longer available._\n" : renderExplanation(explanation, displayPath(explanation));
  }

  /** Shows a store update: opens the preview for a new run, refreshes (throttled) for a changed one. */
  async show(update: ExplanationUpdate): Promise<void> {
    const uri = this.uriFor(update.explanation);
    if (update.isNew) {
      this.changed.fire(uri);
      await this.open(uri);
    } else if (update.changed) {
      this.scheduleRefresh(update.explanation.token, uri, update.explanation.done);
    }
  }

  private uriFor(explanation: Explanation): vscode.Uri {
    let uri = this.uriByToken.get(explanation.token);
    if (uri === undefined) {
      this.runs++;
      const name = path.posix.basename(vscode.Uri.parse(explanation.uri).path) || "code";
      uri = vscode.Uri.from({ scheme: ExplanationScheme, path: `/Explanation ${this.runs} - ${name}.md` });
      this.uriByToken.set(explanation.token, uri);
      this.tokenByPath.set(uri.path, explanation.token);
    }
    return uri;
  }

  private scheduleRefresh(token: string, uri: vscode.Uri, immediately: boolean): void {
    if (immediately) {
      clearTimeout(this.pending.get(token));
      this.pending.delete(token);
      this.changed.fire(uri);
      return;
    }
    if (this.pending.has(token)) return;
    this.pending.set(
      token,
      setTimeout(() => {
        this.pending.delete(token);
        this.changed.fire(uri);
      }, refreshIntervalMs),
    );
  }

  private async open(uri: vscode.Uri): Promise<void> {
    try {
      await vscode.commands.executeCommand("markdown.showPreviewToSide", uri);
    } catch (error) {
      // Without the built-in markdown extension the text itself is still readable.
      this.log.warn(`Markdown preview unavailable (${String(error)}); showing the explanation as text.`);
      const document = await vscode.workspace.openTextDocument(uri);
      await vscode.languages.setTextDocumentLanguage(document, "markdown");
      await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true, preview: true });
    }
  }

  dispose(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.changed.dispose();
  }
}

function displayPath(explanation: Explanation): string {
  const uri = vscode.Uri.parse(explanation.uri);
  return uri.scheme === "file" ? vscode.workspace.asRelativePath(uri) : uri.path;
}
