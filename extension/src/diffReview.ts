// Review of the server's edits (Fix, Generate docs, Generate tests) before they apply: a one-document edit
// opens as a diff of the file against the proposed text, with Apply / Discard; an edit that spans several
// files or creates one goes to VS Code's Refactor Preview (each change to be ticked, then Apply).
import * as path from "path";
import * as vscode from "vscode";
import { ApplyWorkspaceEditParams, ApplyWorkspaceEditRequest, ApplyWorkspaceEditResult, CancellationToken, ResponseError } from "vscode-languageclient/node";
import { applyTextEdits, countTextEdits, reviewLabel, singleDocumentEdits, WorkspaceEdit, withReview } from "./editReview";

export const ProposalScheme = "codellama-proposed";

type Next = ApplyWorkspaceEditRequest.HandlerSignature;
type Result = ApplyWorkspaceEditResult | ResponseError<void>;

export class DiffReview implements vscode.TextDocumentContentProvider {
  private readonly proposals = new Map<string, string>();
  private count = 0;

  constructor(private readonly log: vscode.LogOutputChannel) {}

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.proposals.get(uri.toString()) ?? "";
  }

  async review(params: ApplyWorkspaceEditParams, next: Next): Promise<Result> {
    const edit = params.edit as WorkspaceEdit;
    const label = reviewLabel(params.label);
    const single = singleDocumentEdits(edit);
    if (single === undefined) {
      this.log.info(`${label}: ${countTextEdits(edit)} change(s) in the Refactor Preview; tick them and press Apply.`);
      return next({ ...params, edit: withReview(edit, label) as typeof params.edit }, CancellationToken.None);
    }

    const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(single.uri));
    const version = document.version;
    let proposed: string;
    try {
      proposed = applyTextEdits(document.getText(), single.edits);
    } catch (error) {
      this.log.error(`${label}: the server's edit cannot be applied: ${String(error)}`);
      return { applied: false, failureReason: String(error) };
    }
    const name = path.posix.basename(document.uri.path);
    const proposalUri = vscode.Uri.from({ scheme: ProposalScheme, path: `/${++this.count}/${name}` });
    this.proposals.set(proposalUri.toString(), proposed);
    try {
      await vscode.commands.executeCommand("vscode.diff", document.uri, proposalUri, `${label}: ${name} ↔ proposed`, { preview: true });
      const pick = await vscode.window.showInformationMessage(`${label}: apply the proposed change to ${name}?`, "Apply", "Discard");
      if (pick !== "Apply") {
        this.log.info(`${label}: discarded.`);
        return { applied: false, failureReason: "The user discarded the change." };
      }
      if (document.version !== version) {
        void vscode.window.showWarningMessage(`${label}: ${name} changed during the review, so the proposal no longer fits. Run it again.`);
        return { applied: false, failureReason: "The document changed during the review." };
      }
      return await next(params, CancellationToken.None);
    } finally {
      await this.closeDiff(proposalUri);
      this.proposals.delete(proposalUri.toString());
    }
  }

  private async closeDiff(proposalUri: vscode.Uri): Promise<void> {
    const tabs = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === proposalUri.toString());
    if (tabs.length > 0) await vscode.window.tabGroups.close(tabs);
  }
}
