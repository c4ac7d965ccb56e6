// Unit tests for server path resolution (no VS Code needed).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "path";
import { resolveServerCommand } from "../serverPath";

test("a configured dll runs through dotnet", () => {
  assert.deepEqual(resolveServerCommand("/opt/x/codellama-lsp.dll", "/ext"), { command: "dotnet", args: ["/opt/x/codellama-lsp.dll"] });
});

test("a configured executable runs as it is", () => {
  assert.deepEqual(resolveServerCommand("/usr/local/bin/codellama-lsp", "/ext"), { command: "/usr/local/bin/codellama-lsp", args: [] });
});

test("without a setting the checkout's Release build is preferred over Debug", () => {
  const release = path.join("/repo", "server", "CodeLlamaLsp.Server", "bin", "Release", "net10.0", "codellama-lsp.dll");
  const found = resolveServerCommand("", "/repo/extension", (p) => p === release || p.includes("Debug"));
  assert.deepEqual(found, { command: "dotnet", args: [release] });
});

test("with nothing built the installed tool on PATH is used", () => {
  assert.deepEqual(resolveServerCommand(undefined, "/repo/extension", () => false), { command: "codellama-lsp", args: [] });
});
