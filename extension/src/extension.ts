// The VS Code extension's entry point: creates the log, status bar and explanation view, starts the
// codellama-lsp language server, and registers the commands and the settings listener.
import * as vscode from "vscode";
import { DiffReview, ProposalScheme } from "./diffReview";
import { ExplanationStore } from "./explanations";
import { ExplanationScheme, ExplanationView } from "./explanationView";
import { CodeActionCommandArgs, ConfigurationSection, LspRange, ServerCommands } from "./protocol";
import { ServerController } from "./serverController";
import { isLanguageEnabled, mapSettings, MappedSettings } from "./settings";
import { StatusTracker } from "./status";
import { ShowLogCommand, StatusBar } from "./statusBar";

let controller: ServerController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("CodeLlama LSP", { log: true });
  const tracker = new StatusTracker();
  const statusBar = new StatusBar(tracker);
  // One store: the controller fills it from the server's notifications, the view's documents read it.
  const explanations = new ExplanationStore();
  const explanationView = new ExplanationView(explanations, log);
  let settings = readSettings();
  const diffReview = new DiffReview(log);
  controller = new ServerController(context, log, tracker, statusBar, explanations, explanationView, diffReview, () => settings);
  const server = controller;

  context.subscriptions.push(
    log,
    statusBar,
    explanationView,
    server,
    vscode.workspace.registerTextDocumentContentProvider(ExplanationScheme, explanationView),
    vscode.workspace.registerTextDocumentContentProvider(ProposalScheme, diffReview),
    vscode.commands.registerCommand(ShowLogCommand, () => log.show()),
    vscode.commands.registerCommand("codellama.restartServer", () => server.restart()),
    vscode.commands.registerCommand("codellama.toggleLanguage", () => toggleLanguage(settings)),
    ...selectionCommands(server),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration(ConfigurationSection)) return;
      settings = readSettings();
      if (event.affectsConfiguration(`${ConfigurationSection}.serverPath`)) {
        log.info("codellama.serverPath changed: restarting the server.");
        await server.restart();
      } else {
        await server.sendSettings(settings);
      }
    }),
  );
  await server.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}

function readSettings(): MappedSettings {
  const configuration = vscode.workspace.getConfiguration(ConfigurationSection);
  return mapSettings((key) => configuration.get(key), { workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath });
}

/** Context menu entries: run a server code action command on the selection (or the cursor's line). */
function selectionCommands(server: ServerController): vscode.Disposable[] {
  const entries: [string, string][] = [
    ["codellama.explainSelection", ServerCommands.explain],
    ["codellama.fixSelection", ServerCommands.fix],
    ["codellama.generateDocsSelection", ServerCommands.generateDocs],
    ["codellama.generateTestsSelection", ServerCommands.generateTests],
  ];
  return entries.map(([id, serverCommand]) =>
    vscode.commands.registerTextEditorCommand(id, (editor) => {
      const selection = editor.selection;
      const range = selection.isEmpty ? editor.document.lineAt(selection.active.line).range : selection;
      const args: CodeActionCommandArgs = { uri: editor.document.uri.toString(), range: toLspRange(range) };
      if (serverCommand === ServerCommands.fix) {
        // Fix works from the problems in the range; with none, it is asked to fix what it finds wrong.
        const diagnostics = vscode.languages.getDiagnostics(editor.document.uri).filter((d) => d.range.intersection(range) !== undefined);
        args.diagnostics = diagnostics.map((d) => ({
          range: toLspRange(d.range),
          message: d.message,
          severity: (d.severity + 1) as 1 | 2 | 3 | 4,
          source: d.source,
          code: typeof d.code === "object" ? d.code.value : d.code,
        }));
      }
      return server.runServerCommand(serverCommand, args);
    }),
  );
}

function toLspRange(range: vscode.Range): LspRange {
  return { start: { line: range.start.line, character: range.start.character }, end: { line: range.end.line, character: range.end.character } };
}

/** Switches inline completions off (or back on) for the active editor's language, in the user settings. */
async function toggleLanguage(settings: MappedSettings): Promise<void> {
  const languageId = vscode.window.activeTextEditor?.document.languageId;
  if (languageId === undefined) return;
  const configuration = vscode.workspace.getConfiguration(ConfigurationSection);
  const disabled = settings.client.disabledLanguages.filter((id) => id !== languageId);
  const enabling = !isLanguageEnabled(languageId, settings.client);
  if (!enabling) disabled.push(languageId);
  await configuration.update("disabledLanguages", disabled, vscode.ConfigurationTarget.Global);
  if (enabling && !isLanguageEnabled(languageId, { ...settings.client, disabledLanguages: disabled })) {
    await configuration.update("enabledLanguages", [...settings.client.enabledLanguages, languageId], vscode.ConfigurationTarget.Global);
  }
  void vscode.window.showInformationMessage(`CodeLlama inline completions are ${enabling ? "on" : "off"} for ${languageId}.`);
}
