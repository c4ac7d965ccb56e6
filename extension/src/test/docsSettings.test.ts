// Docs that match the code (issue 15): every setting a doc names exists in the server's settings parser
// (ServerSettings.cs) or the extension's package.json, the parser and package.json agree, and the remote
// example in docs/scaling.md has what the remote backend needs.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { ServerCommands, ServerSettingNames } from "../protocol";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const read = (...parts: string[]) => fs.readFileSync(path.join(repoRoot, ...parts), "utf8");
const manifest = JSON.parse(read("extension", "package.json"));

/** package.json's settings without the `codellama.` prefix. */
const extensionSettings = Object.keys(manifest.contributes.configuration.properties).map((key) => key.replace(/^codellama\./, ""));
const extensionCommands = (manifest.contributes.commands as { command: string }[]).map((c) => c.command.replace(/^codellama\./, ""));
/** Settings only the extension reads; every other package.json setting goes to the server. */
const extensionOnly = ["serverPath", "enabledLanguages", "disabledLanguages", "reviewEdits", "trace.server"];

/** The names ServerSettings.Apply accepts: `"name" => s with { ... }`. */
function parserSettings(t: { skip: (reason: string) => void }): string[] | undefined {
  const file = path.join(repoRoot, "server", "CodeLlamaLsp.Server", "Lsp", "ServerSettings.cs");
  if (!fs.existsSync(file)) {
    t.skip("the server's sources are not here");
    return undefined;
  }
  return [...fs.readFileSync(file, "utf8").matchAll(/^\s*"(\w+)" => s with/gm)].map((m) => m[1]);
}

/** Markdown files users read: the READMEs and docs/. */
function docs(): { name: string; text: string }[] {
  const files = ["README.md", path.join("extension", "README.md"), ...fs.readdirSync(path.join(repoRoot, "docs")).filter((f) => f.endsWith(".md")).map((f) => path.join("docs", f))];
  return files.map((name) => ({ name, text: read(name) }));
}

test("every codellama.X a doc names is a setting, a command or a server command", (t) => {
  const server = parserSettings(t);
  if (server === undefined) return;
  const known = new Set([...extensionSettings, ...extensionCommands, ...server, ...Object.values(ServerCommands).map((c) => c.replace(/^codellama\./, ""))]);
  for (const { name, text } of docs()) {
    for (const match of text.matchAll(/\bcodellama\.([a-zA-Z]+(?:\.server)?)\b/g)) {
      if (["lua", "md", "vsix", "dll", "json"].includes(match[1])) continue; // a file name, like codellama.lua
      assert.ok(known.has(match[1]), `${name} names codellama.${match[1]}, which neither the server nor package.json knows`);
    }
  }
});

test("the server's settings in docs/lsp-extensions.md are exactly the parser's", (t) => {
  const server = parserSettings(t);
  if (server === undefined) return;
  const section = read("docs", "lsp-extensions.md").split("Names are the same as")[1].split("\nSources,")[0];
  // Backticked names outside the parentheses that list a setting's values.
  const documented = [...section.replace(/\([^)]*\)/g, "").matchAll(/`([a-z][a-zA-Z]+)`/g)].map((m) => m[1]).filter((n) => n !== "generate");
  assert.deepEqual([...new Set(documented)].sort(), [...server].sort());
});

test("package.json offers every server setting, and sends nothing the server does not parse", (t) => {
  const server = parserSettings(t);
  if (server === undefined) return;
  for (const name of server) assert.ok(extensionSettings.includes(name), `codellama.${name} is parsed by the server but missing from package.json`);
  for (const name of extensionSettings) assert.ok(extensionOnly.includes(name) || server.includes(name), `codellama.${name} in package.json is neither extension-only nor parsed by the server`);
  assert.deepEqual([...ServerSettingNames].sort(), [...server].sort(), "protocol.ts ServerSettingNames");
});

test("docs/vscode.md's settings table names every package.json setting", () => {
  const table = read("docs", "vscode.md").split("## Settings")[1].split("\n## ")[0];
  const rows = table.split("\n").filter((line) => line.startsWith("| `")).map((line) => line.split("|")[1]);
  const named = new Set(rows.flatMap((cell) => [...cell.matchAll(/`([\w.]+)`/g)].map((m) => m[1])));
  const inText = table.includes("`trace.server`") ? ["trace.server"] : [];
  for (const name of extensionSettings) assert.ok(named.has(name) || inText.includes(name), `codellama.${name} is missing from docs/vscode.md's settings table`);
  for (const name of named) assert.ok(extensionSettings.includes(name), `docs/vscode.md's table names ${name}, which package.json lacks`);
});

test("the remote example in docs/scaling.md sets what the remote backend needs, with names that exist", (t) => {
  const server = parserSettings(t);
  if (server === undefined) return;
  const block = read("docs", "scaling.md").split("```jsonc")[1].split("```")[0];
  const keys = [...block.matchAll(/"codellama\.(\w+)"\s*:/g)].map((m) => m[1]);
  for (const key of keys) assert.ok(server.includes(key), `codellama.${key} in the example is not a server setting`);
  for (const required of ["backend", "endpoint", "model"]) assert.ok(keys.includes(required), `the remote example lacks codellama.${required}`);
  // As JSON once the comments are gone: copyable into settings.json.
  assert.doesNotThrow(() => JSON.parse(block.replace(/(^|\s)\/\/[^\n]*/gm, "")));
});
