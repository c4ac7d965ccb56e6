#!/usr/bin/env node
// A stand-in language server for the end-to-end test's `--server stub` mode: it speaks the same protocol as
// codellama-lsp (status notifications, inline completions, code actions) with fixed answers, so the
// extension's behaviour inside a real VS Code can be checked where the real server has no model to run.
// Run by the extension as `stub-server.js --stdio` (codellama.serverPath points at it).
const { createMessageConnection, StreamMessageReader, StreamMessageWriter } = require("vscode-jsonrpc/node");

const connection = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
const documents = new Map();
const completion = "a * b  # multiplied by the stub server";

// maxTokens 13 makes the stub crash (at start and on a settings change): the e2e test's way to check the
// extension's restart-after-crash and its limit.
function crashIfAsked(settings) {
  if (settings && settings.maxTokens === 13) {
    process.stderr.write("stub: crashing on purpose (maxTokens 13)\n");
    process.exit(3);
  }
}

connection.onRequest("initialize", (p) => (crashIfAsked(p.initializationOptions), {
  capabilities: {
    textDocumentSync: 1,
    inlineCompletionProvider: true,
    codeActionProvider: { codeActionKinds: ["quickfix", "refactor"] },
    executeCommandProvider: { commands: ["codellama.explain", "codellama.fix", "codellama.generateDocs", "codellama.generateTests"] },
  },
  serverInfo: { name: "codellama-lsp e2e stub", version: "0" },
}));
connection.onNotification("initialized", async () => {
  await connection.sendNotification("codellama/status", { state: "loading", message: "Loading the stub model", progress: 0.5 });
  setTimeout(() => connection.sendNotification("codellama/status", { state: "ready", message: "Stub model ready" }), 500);
});
connection.onNotification("textDocument/didOpen", (p) => documents.set(p.textDocument.uri, p.textDocument.text));
connection.onNotification("textDocument/didChange", (p) => documents.set(p.textDocument.uri, p.contentChanges[p.contentChanges.length - 1].text));
connection.onNotification("workspace/didChangeConfiguration", (p) => crashIfAsked(p.settings && p.settings.codellama));
connection.onRequest("textDocument/inlineCompletion", (p) => {
  const lines = (documents.get(p.textDocument.uri) ?? "").split("\n");
  const typed = (lines[p.position.line] ?? "").slice(0, p.position.character);
  // Completes `return ` (and any prefix of the completion typed after it), like a model continuing the line.
  const match = /return (.*)$/.exec(typed);
  if (match === null || !completion.startsWith(match[1])) return { items: [] };
  return { items: [{ insertText: completion.slice(match[1].length), range: { start: p.position, end: p.position } }] };
});
connection.onRequest("textDocument/codeAction", (p) => [
  { title: "CodeLlama: Explain this", kind: "refactor", command: { title: "Explain", command: "codellama.explain", arguments: [{ uri: p.textDocument.uri, range: p.range }] } },
  { title: "CodeLlama: Fix this", kind: "quickfix", command: { title: "Fix", command: "codellama.fix", arguments: [{ uri: p.textDocument.uri, range: p.range }] } },
]);
connection.onRequest("workspace/executeCommand", async (p) => {
  const target = p.arguments[0];
  if (p.command === "codellama.explain") {
    let text = "";
    for (const word of ["This", " function", " multiplies", " two", " numbers."]) {
      text += word;
      await connection.sendNotification("codellama/explanation", { token: "stub-1", uri: target.uri, range: target.range, markdown: text, done: false });
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await connection.sendNotification("codellama/explanation", { token: "stub-1", uri: target.uri, range: target.range, markdown: text, done: true });
    await connection.sendNotification("window/showMessage", { type: 3, message: text });
    return { markdown: text };
  }
  const edit = { changes: { [target.uri]: [{ range: target.range, newText: "    return a * b\n" }] } };
  const result = await connection.sendRequest("workspace/applyEdit", { label: "CodeLlama: Fix", edit });
  return { applied: result.applied, edit };
});
connection.onRequest("shutdown", () => null);
connection.onNotification("exit", () => process.exit(0));
connection.listen();
