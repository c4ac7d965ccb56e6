// Language client middleware: inline completions (switched off per language, shaped for partial accept),
// edits from Fix / Generate docs / Generate tests held for review (DiffReview), and the server's
// workspace/configuration answered with the same mapped settings that initializationOptions carries.
import * as vscode from "vscode";
import { CancellationToken, Middleware } from "vscode-languageclient/node";
import { DiffReview } from "./diffReview";
import { countTextEdits, WorkspaceEdit } from "./editReview";
import { normalizeInlineItem } from "./inlineItems";
import { ConfigurationSection, LspRange } from "./protocol";
import { isLanguageEnabled, MappedSettings } from "./settings";

export function editorMiddleware(settings: () => MappedSettings, review: DiffReview): Middleware {
  return {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      if (!isLanguageEnabled(document.languageId, settings().client)) return null;
      const result = await next(document, position, context, token);
      if (result === null || result === undefined) return result;
      const items = Array.isArray(result) ? result : result.items;
      const lineText = document.lineAt(position.line).text;
      const shaped: vscode.InlineCompletionItem[] = [];
      for (const item of items) {
        const insertText = typeof item.insertText === "string" ? item.insertText : { value: item.insertText.value };
        const plain = normalizeInlineItem({ insertText, range: item.range === undefined ? undefined : toLspRange(item.range) }, { line: position.line, character: position.character }, lineText);
        if (plain === undefined) continue;
        const shapedItem = new vscode.InlineCompletionItem(plain.insertText, toRange(plain.range), item.command);
        shapedItem.filterText = item.filterText;
        shaped.push(shapedItem);
      }
      return shaped;
    },

    workspace: {
      handleApplyEdit: async (params, next) => {
        const edit = params.edit as WorkspaceEdit;
        if (!settings().client.reviewEdits || countTextEdits(edit) === 0) return next(params, CancellationToken.None);
        return review.review(params, next);
      },
      configuration: async (params, token, next) => {
        const answers = await next(params, token);
        if (!Array.isArray(answers)) return answers;
        return params.items.map((item, index) => (item.section === ConfigurationSection ? settings().server : answers[index]));
      },
    },
  };
}

function toLspRange(range: vscode.Range): LspRange {
  return { start: { line: range.start.line, character: range.start.character }, end: { line: range.end.line, character: range.end.character } };
}

function toRange(range: LspRange): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}
