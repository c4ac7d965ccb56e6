// The status bar item: renders StatusTracker's view; a click opens the server log.
import * as vscode from "vscode";
import { StatusTracker } from "./status";

export const ShowLogCommand = "codellama.showLog";

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("codellama.status", vscode.StatusBarAlignment.Right, 100);

  constructor(private readonly tracker: StatusTracker) {
    this.item.name = "CodeLlama";
    this.item.command = ShowLogCommand;
    this.refresh();
    this.item.show();
  }

  refresh(): void {
    const view = this.tracker.view();
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === "error" ? new vscode.ThemeColor("statusBarItem.errorBackground") : view.severity === "warning" ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
