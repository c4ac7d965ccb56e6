// Shapes the server's inline completion items so VS Code shows them as ghost text and its built-in
// "Accept Next Word" / "Accept Line" commands work on them: plain-text insertText (partial accept does not
// apply to snippets) and an explicit range on the cursor's line that contains the cursor.
import { LspPosition, LspRange } from "./protocol";

/** An inline completion item as the server (LSP 3.18) sends it; insertText may be a StringValue snippet. */
export interface ServerInlineItem {
  insertText: string | { kind?: string; value: string };
  range?: LspRange;
}

/** An item ready for VS Code: plain text replacing `range`. */
export interface PlainInlineItem {
  insertText: string;
  range: LspRange;
}

/**
 * Normalizes one item, or returns undefined when VS Code could not show it: a range off the cursor's line
 * or not containing the cursor, text that does not start with what the user typed inside the range,
 * or nothing left to insert.
 */
export function normalizeInlineItem(item: ServerInlineItem, position: LspPosition, lineText: string): PlainInlineItem | undefined {
  const insertText = typeof item.insertText === "string" ? item.insertText : snippetToPlainText(item.insertText.value);
  const range = item.range ?? { start: position, end: position };
  if (range.start.line !== position.line || range.start.character > position.character) return undefined;
  if (range.end.line < position.line || (range.end.line === position.line && range.end.character < position.character)) return undefined;
  const typed = lineText.slice(range.start.character, position.character);
  if (!insertText.startsWith(typed)) return undefined;
  const replaced = range.end.line === position.line ? lineText.slice(range.start.character, range.end.character) : undefined;
  if (insertText === typed || insertText === replaced) return undefined;
  return { insertText, range: { start: { ...range.start }, end: { ...range.end } } };
}

/** Normalizes a list, dropping unusable items and exact duplicates, keeping the server's order. */
export function normalizeInlineItems(items: readonly ServerInlineItem[], position: LspPosition, lineText: string): PlainInlineItem[] {
  const seen = new Set<string>();
  const result: PlainInlineItem[] = [];
  for (const item of items) {
    const plain = normalizeInlineItem(item, position, lineText);
    if (plain === undefined) continue;
    const key = `${plain.range.start.character}:${plain.range.end.line}:${plain.range.end.character}:${plain.insertText}`;
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(plain);
  }
  return result;
}

/** Flattens an LSP snippet to the text it inserts: placeholders keep their default text, tab stops vanish. */
export function snippetToPlainText(snippet: string): string {
  let out = "";
  let i = 0;
  const readUntilClose = (): string => {
    // Reads a placeholder body up to its matching `}`, flattening nested placeholders.
    let body = "";
    while (i < snippet.length && snippet[i] !== "}") {
      if (snippet[i] === "\\" && i + 1 < snippet.length) {
        body += snippet[i + 1];
        i += 2;
      } else if (snippet[i] === "$") {
        body += readVariable();
      } else {
        body += snippet[i++];
      }
    }
    i++; // the closing brace
    return body;
  };
  const readVariable = (): string => {
    // At a `$`: `$1`, `${1}`, `${1:default}`, `${1|a,b|}` or `$name` / `${name:default}`.
    i++;
    if (/[0-9]/.test(snippet[i] ?? "")) {
      while (/[0-9]/.test(snippet[i] ?? "")) i++;
      return "";
    }
    if (snippet[i] === "{") {
      i++;
      while (i < snippet.length && /[0-9A-Za-z_]/.test(snippet[i])) i++;
      if (snippet[i] === ":") {
        i++;
        return readUntilClose();
      }
      if (snippet[i] === "|") {
        const close = snippet.indexOf("|}", i + 1);
        const choices = snippet.slice(i + 1, close === -1 ? snippet.length : close);
        i = close === -1 ? snippet.length : close + 2;
        return choices.split(",")[0] ?? "";
      }
      i++;
      return "";
    }
    if (/[A-Za-z_]/.test(snippet[i] ?? "")) {
      while (/[0-9A-Za-z_]/.test(snippet[i] ?? "")) i++;
      return "";
    }
    return "$";
  };
  while (i < snippet.length) {
    const c = snippet[i];
    if (c === "\\" && i + 1 < snippet.length && "$}\\".includes(snippet[i + 1])) {
      out += snippet[i + 1];
      i += 2;
    } else if (c === "$") {
      out += readVariable();
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
