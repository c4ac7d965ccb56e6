// Integration test: the extension's client logic against the real codellama-lsp process, with the tiny
// random-weight fixture on the CPU. It needs the server built in this checkout (`npm test` at the root builds
// it first through `dotnet test`); without the build or the fixture it is skipped and says why.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { pathToFileURL } from "url";
import { applyTextEdits, singleDocumentEdits } from "../editReview";
import { normalizeInlineItems, ServerInlineItem } from "../inlineItems";
import { CodeActionCommandArgs, ServerCommands } from "../protocol";
import { resolveServerCommand } from "../serverPath";
import { configurationChange, mapSettings } from "../settings";
import { describeProblem } from "../startupProblem";
import { LspSession } from "./integration/lspSession";

const extensionDir = path.resolve(__dirname, "..", "..");
const repoRoot = path.resolve(extensionDir, "..");
const fixture = path.resolve(repoRoot, "..", "shared", "fixtures", "tiny-32k-4bit-g32");
const server = resolveServerCommand(undefined, extensionDir);
const loadTimeoutMs = 120_000;

const source = "def add(a, b):\n    return a + b\n\n\ndef multiply(a, b):\n    ";
const documentUri = pathToFileURL(path.join(repoRoot, "integration-sample.py")).toString();

/** Why the suite cannot run here, or undefined when it can. */
function skipReason(): string | undefined {
  if (server.source !== "checkout") return "the server is not built in this checkout (run `dotnet build -c Release server/CodeLlamaLsp.Server`)";
  if (!fs.existsSync(path.join(fixture, "config.json"))) return `the tiny fixture is missing at ${fixture}`;
  return undefined;
}

let session: LspSession | undefined;
let notReady: string | undefined;
const reason = skipReason();

before(async () => {
  if (reason !== undefined) return;
  session = new LspSession(server, repoRoot);
  const settings = mapSettings((key) => ({ model: fixture, device: "cpu", maxTokens: 8, temperature: 0, debounceMs: 0 })[key]);
  const init = await session.initialize(settings.server, pathToFileURL(repoRoot).toString());
  assert.ok(init.capabilities.inlineCompletionProvider, "the server must offer inline completions");
  const status = await session.waitForState(["ready", "error"], loadTimeoutMs);
  if (status.state === "error") {
    // A server that cannot load the fixture is not a failure of the extension, but the reason must be visible.
    notReady = describeProblem({ command: server.command, statusMessage: status.message }).message;
    return;
  }
  await session.connection.sendNotification("textDocument/didOpen", { textDocument: { uri: documentUri, languageId: "python", version: 1, text: source } });
});

after(async () => {
  if (session !== undefined) {
    const code = await session.shutdown();
    assert.equal(code, 0, `the server exited with ${code}; stderr:\n${session.stderr}`);
  }
});

/** Skips with the reason when the suite cannot run; returns the live session otherwise. */
function live(t: { skip: (message: string) => void }): LspSession | undefined {
  if (reason !== undefined) {
    t.skip(reason);
    return undefined;
  }
  if (notReady !== undefined) {
    t.skip(`the server did not load the fixture: ${notReady}`);
    return undefined;
  }
  return session;
}

test("status notifications arrive and end in ready", { skip: reason }, () => {
  assert.ok(session!.statuses.length > 0, "no codellama/status notification");
  if (notReady === undefined) assert.equal(session!.tracker.serverState, "ready");
  else assert.equal(session!.tracker.view().severity, "error");
});

test("an inline completion comes back as ghost text VS Code can partially accept", { timeout: 60_000 }, async (t) => {
  const lsp = live(t);
  if (lsp === undefined) return;
  const lines = source.split("\n");
  const position = { line: lines.length - 1, character: lines[lines.length - 1].length };
  const result = await lsp.connection.sendRequest<{ items: ServerInlineItem[] } | ServerInlineItem[] | null>("textDocument/inlineCompletion", {
    textDocument: { uri: documentUri },
    position,
    context: { triggerKind: 1 /* Automatic */ },
  });
  assert.ok(result !== null, "the server answered null");
  const items = Array.isArray(result) ? result : result.items;
  const shaped = normalizeInlineItems(items, position, lines[position.line]);
  assert.ok(shaped.length > 0, `no usable inline item in ${JSON.stringify(result)}`);
  assert.ok(shaped[0].insertText.length > 0);
  assert.equal(shaped[0].range.start.line, position.line);
  t.diagnostic(`ghost text from the tiny random-weight model: ${JSON.stringify(shaped[0].insertText)}`);
});

test("code actions offer the server's commands with { uri, range }", async (t) => {
  const lsp = live(t);
  if (lsp === undefined) return;
  const range = { start: { line: 0, character: 0 }, end: { line: 1, character: 16 } };
  const diagnostic = { range, message: "multiply is missing its body", severity: 1, source: "integration test" };
  const actions = await lsp.connection.sendRequest<{ title: string; command?: { command: string; arguments?: unknown[] } }[] | null>("textDocument/codeAction", {
    textDocument: { uri: documentUri },
    range,
    context: { diagnostics: [diagnostic], triggerKind: 1 /* Invoked */ },
  });
  assert.ok(actions !== null && actions.length > 0, "no code actions");
  const commands = actions.map((action) => action.command?.command);
  assert.ok(commands.includes(ServerCommands.explain), `no Explain among ${JSON.stringify(commands)}`);
  assert.ok(commands.includes(ServerCommands.fix), `no Fix among ${JSON.stringify(commands)}`);
  const explain = actions.find((action) => action.command?.command === ServerCommands.explain)!;
  const args = explain.command!.arguments?.[0] as CodeActionCommandArgs;
  assert.equal(args.uri, documentUri);
  assert.deepEqual(args.range, range);
});

test("Explain streams codellama/explanation and its result matches the final notification", { timeout: 60_000 }, async (t) => {
  const lsp = live(t);
  if (lsp === undefined) return;
  const target: CodeActionCommandArgs = { uri: documentUri, range: { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } } };
  const result = await runCommand<{ markdown: string }>(t, lsp, ServerCommands.explain, target);
  if (result === undefined) return;
  const final = lsp.explanations.complete(target.uri, target.range, result.markdown, "unused");
  assert.equal(final.isNew, false, "the result arrived without any codellama/explanation notification");
  assert.equal(final.explanation.markdown, result.markdown);
  assert.ok(lsp.explanations.isEcho(result.markdown) || result.markdown.trim() === "", "the final explanation is recognised as the showMessage echo");
});

test("Fix sends workspace/applyEdit, which the extension marks for review", { timeout: 60_000 }, async (t) => {
  const lsp = live(t);
  if (lsp === undefined) return;
  const range = { start: { line: 1, character: 0 }, end: { line: 1, character: 16 } };
  const target: CodeActionCommandArgs = { uri: documentUri, range, diagnostics: [{ range, message: "add should subtract", severity: 1 }] };
  const result = await runCommand<{ applied: boolean; edit: unknown }>(t, lsp, ServerCommands.fix, target);
  if (result === undefined) return;
  assert.equal(lsp.appliedEdits.length, 1, "no workspace/applyEdit arrived");
  const seen = lsp.appliedEdits[0];
  const [change] = seen.reviewed.documentChanges ?? [];
  assert.ok(change !== undefined && !("kind" in change), "the edit has no text change");
  assert.equal(change.textDocument.uri, documentUri);
  assert.ok(change.edits.every((edit) => edit.annotationId !== undefined), "every edit needs confirmation");
  // The diff review shows the document with the edit applied: it must apply cleanly and change the text.
  const single = singleDocumentEdits(seen.edit);
  assert.ok(single !== undefined, "a Fix of one range should edit one document");
  assert.notEqual(applyTextEdits(source, single.edits), source);
  assert.equal(result.applied, false);
});

/**
 * Runs a server command. A server whose build says the command's prompts are not there yet skips the test
 * with its own words; any other error fails it.
 */
async function runCommand<T>(t: { skip: (message: string) => void }, lsp: LspSession, command: string, target: CodeActionCommandArgs): Promise<T | undefined> {
  try {
    return await lsp.connection.sendRequest<T>("workspace/executeCommand", { command, arguments: [target] });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/not in the \w+ library of this build yet/.test(message)) {
      t.skip(`the server cannot run ${command} yet: ${message}`);
      return undefined;
    }
    if (/held no usable code/.test(message)) {
      // The tiny fixture has random weights: its answer to Fix is gibberish, which the server rightly refuses.
      t.skip(`the random-weight fixture wrote no code for ${command}, so the server sent no edit (${message}); the review path is covered by the unit tests and the stub e2e`);
      return undefined;
    }
    throw error;
  }
}

test("changed settings reach the running server without an error", async (t) => {
  const lsp = live(t);
  if (lsp === undefined) return;
  const before = lsp.statuses.length;
  await lsp.connection.sendNotification("workspace/didChangeConfiguration", configurationChange({ maxTokens: 4 }));
  // A change that needs no reload leaves the server ready: ask for a completion to see it still answers.
  const result = await lsp.connection.sendRequest("textDocument/inlineCompletion", { textDocument: { uri: documentUri }, position: { line: 0, character: 0 }, context: { triggerKind: 1 } });
  assert.notEqual(result, undefined);
  assert.ok(lsp.statuses.slice(before).every((status) => status.state !== "error"), "the settings change led to an error status");
});
