// Checks that every custom name in protocol.ts is documented in docs/lsp-extensions.md, and, once the
// server defines them, spelled the same in server/CodeLlamaLsp.Server/Protocol/CustomMethods.cs.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { ExplanationNotificationMethod, ServerCommands, ServerSettingNames, StatusNotificationMethod } from "../protocol";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const names = [StatusNotificationMethod, ExplanationNotificationMethod, ...Object.values(ServerCommands)];

test("every custom method and command name is in docs/lsp-extensions.md", () => {
  const docs = fs.readFileSync(path.join(repoRoot, "docs", "lsp-extensions.md"), "utf8");
  for (const name of names) assert.ok(docs.includes(`\`${name}\``), `${name} is not documented`);
});

test("every server setting name is in docs/lsp-extensions.md", () => {
  const docs = fs.readFileSync(path.join(repoRoot, "docs", "lsp-extensions.md"), "utf8");
  for (const name of ServerSettingNames) assert.ok(docs.includes(`\`${name}\``), `${name} is not documented`);
});

test("the server spells the custom names the same way", (t) => {
  const file = path.join(repoRoot, "server", "CodeLlamaLsp.Server", "Protocol", "CustomMethods.cs");
  if (!fs.existsSync(file)) {
    t.skip("server/CodeLlamaLsp.Server/Protocol/CustomMethods.cs does not exist yet");
    return;
  }
  const source = fs.readFileSync(file, "utf8");
  for (const name of names) assert.ok(source.includes(`"${name}"`), `${name} is not in CustomMethods.cs`);
});
