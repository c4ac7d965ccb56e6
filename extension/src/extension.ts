// The VS Code extension's entry point: starts the codellama-lsp language server and connects it to the editor.
import * as vscode from "vscode";
import { resolveServerCommand } from "./serverPath";

export function activate(context: vscode.ExtensionContext): void {
  const setting = vscode.workspace.getConfiguration("codellama").get<string>("serverPath");
  const server = resolveServerCommand(setting, context.extensionPath);
  const output = vscode.window.createOutputChannel("CodeLlama LSP");
  output.appendLine(`server: ${server.command} ${server.args.join(" ")}`);
  context.subscriptions.push(output);
}

export function deactivate(): void {
  // Nothing to stop yet: the language client arrives with the extension issue.
}
