// Marks a server's workspace/applyEdit for review: every text edit gets a change annotation with
// needsConfirmation, which VS Code answers with its Refactor Preview (accept / discard per change)
// instead of applying the edit at once. Pure LSP JSON in and out.
import { LspRange } from "./protocol";

interface TextEdit {
  range: LspRange;
  newText: string;
  annotationId?: string;
}

interface TextDocumentEdit {
  textDocument: { uri: string; version: number | null };
  edits: TextEdit[];
}

/** A resource operation (create / rename / delete file): it has a `kind`. */
interface ResourceOperation {
  kind: "create" | "rename" | "delete";
  annotationId?: string;
  [key: string]: unknown;
}

export interface ChangeAnnotation {
  label: string;
  needsConfirmation?: boolean;
  description?: string;
}

export interface WorkspaceEdit {
  changes?: Record<string, TextEdit[]>;
  documentChanges?: (TextDocumentEdit | ResourceOperation)[];
  changeAnnotations?: Record<string, ChangeAnnotation>;
}

/** The annotation id the extension adds. */
export const ReviewAnnotationId = "codellama.review";

/**
 * Returns a copy of `edit` in which every change needs confirmation under one annotation labelled `label`.
 * A `changes` map becomes `documentChanges` (with null versions), since only those carry annotations.
 * Annotations the server already set keep their labels but gain needsConfirmation.
 */
export function withReview(edit: WorkspaceEdit, label: string): WorkspaceEdit {
  const annotations: Record<string, ChangeAnnotation> = {};
  for (const [id, annotation] of Object.entries(edit.changeAnnotations ?? {})) {
    annotations[id] = { ...annotation, needsConfirmation: true };
  }
  annotations[ReviewAnnotationId] = { label, needsConfirmation: true, description: "Proposed by CodeLlama: review before applying." };

  const annotate = (textEdit: TextEdit): TextEdit => ({ ...textEdit, annotationId: textEdit.annotationId ?? ReviewAnnotationId });
  const documentChanges: (TextDocumentEdit | ResourceOperation)[] = [];
  for (const change of edit.documentChanges ?? []) {
    if ("kind" in change) {
      documentChanges.push({ ...change, annotationId: change.annotationId ?? ReviewAnnotationId });
    } else {
      documentChanges.push({ textDocument: { ...change.textDocument }, edits: change.edits.map(annotate) });
    }
  }
  if (edit.documentChanges === undefined) {
    for (const [uri, edits] of Object.entries(edit.changes ?? {})) {
      documentChanges.push({ textDocument: { uri, version: null }, edits: edits.map(annotate) });
    }
  }
  return { documentChanges, changeAnnotations: annotations };
}

/** Counts the text edits in a workspace edit (for the log and for skipping empty edits). */
export function countTextEdits(edit: WorkspaceEdit): number {
  let count = 0;
  for (const change of edit.documentChanges ?? []) if (!("kind" in change)) count += change.edits.length;
  if (edit.documentChanges === undefined) for (const edits of Object.values(edit.changes ?? {})) count += edits.length;
  return count;
}

/** The review label for an applyEdit: the server's label, else a generic one. */
export function reviewLabel(serverLabel: string | undefined): string {
  const label = serverLabel?.trim();
  return label ? `CodeLlama: ${label.replace(/^CodeLlama:\s*/i, "")}` : "CodeLlama: proposed edit";
}

/** The edits of a workspace edit that changes exactly one document and does nothing else, or undefined. */
export function singleDocumentEdits(edit: WorkspaceEdit): { uri: string; edits: TextEdit[] } | undefined {
  if (edit.documentChanges !== undefined) {
    if (edit.documentChanges.length !== 1 || "kind" in edit.documentChanges[0]) return undefined;
    const [change] = edit.documentChanges as TextDocumentEdit[];
    return { uri: change.textDocument.uri, edits: change.edits };
  }
  const entries = Object.entries(edit.changes ?? {});
  return entries.length === 1 ? { uri: entries[0][0], edits: entries[0][1] } : undefined;
}

/**
 * Applies LSP text edits to a text (positions in UTF-16 code units, as JavaScript strings count them; a
 * character past the end of a line clamps to it, as LSP asks). Edits must not overlap; their order does not matter.
 */
export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
  const offset = (position: { line: number; character: number }): number => {
    if (position.line >= lineStarts.length) return text.length;
    const start = lineStarts[position.line];
    const nextStart = position.line + 1 < lineStarts.length ? lineStarts[position.line + 1] : text.length + 1;
    let end = nextStart - 1; // the line's "\n" (or the end of the text)
    if (end > start && text[end - 1] === "\r") end--;
    return Math.min(start + position.character, Math.max(start, end));
  };
  const spans = edits
    .map((edit) => ({ start: offset(edit.range.start), end: offset(edit.range.end), newText: edit.newText }))
    .sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].start < spans[i - 1].end) throw new Error(`Overlapping edits at offsets ${spans[i - 1].start}-${spans[i - 1].end} and ${spans[i].start}-${spans[i].end}.`);
  }
  let result = "";
  let last = 0;
  for (const span of spans) {
    result += text.slice(last, span.start) + span.newText;
    last = span.end;
  }
  return result + text.slice(last);
}
