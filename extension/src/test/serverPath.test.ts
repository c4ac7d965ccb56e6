// Unit tests for server path resolution (no VS Code needed).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "path";
import { commandExists, resolveServerCommand } from "../serverPath";

const none = () => false;
const linux = { homeDir: "/home/me", platform: "linux" as const, env: {} };

test("a configured dll runs through dotnet", () => {
  assert.deepEqual(resolveServerCommand("/opt/x/codellama-lsp.dll", "/ext", none, linux), { command: "dotnet", args: ["/opt/x/codellama-lsp.dll"], source: "setting" });
});

test("a configured executable runs as it is, whatever else exists", () => {
  assert.deepEqual(resolveServerCommand("  /usr/local/bin/codellama-lsp ", "/ext", () => true, linux), { command: "/usr/local/bin/codellama-lsp", args: [], source: "setting" });
});

test("without a setting the server bundled in the platform package wins over a checkout build", () => {
  const bundled = path.join("/ext", "server", "codellama-lsp");
  assert.deepEqual(resolveServerCommand("", "/ext", () => true, linux), { command: bundled, args: [], source: "bundled" });
  const exe = path.join("/ext", "server", "codellama-lsp.exe");
  assert.equal(resolveServerCommand(undefined, "/ext", (p) => p === exe, { ...linux, platform: "win32" }).command, exe);
});

test("a setting wins over the bundled server", () => {
  assert.equal(resolveServerCommand("/opt/codellama-lsp", "/ext", () => true, linux).source, "setting");
});

test("without a setting the checkout's Release build is preferred over Debug", () => {
  const release = path.join("/repo", "server", "CodeLlamaLsp.Server", "bin", "Release", "net10.0", "codellama-lsp.dll");
  const found = resolveServerCommand("", "/repo/extension", (p) => p === release || p.includes("Debug"), linux);
  // (no server/ folder inside extension/: a checkout is not a platform package)
  assert.deepEqual(found, { command: "dotnet", args: [release], source: "checkout" });
});

test("the Debug build is used when there is no Release build", () => {
  const debug = path.join("/repo", "server", "CodeLlamaLsp.Server", "bin", "Debug", "net10.0", "codellama-lsp.dll");
  assert.deepEqual(resolveServerCommand(undefined, "/repo/extension", (p) => p === debug, linux).args, [debug]);
});

test("an installed .NET global tool is found in ~/.dotnet/tools even when not on PATH", () => {
  const tool = path.join("/home/me", ".dotnet", "tools", "codellama-lsp");
  assert.deepEqual(resolveServerCommand(undefined, "/repo/extension", (p) => p === tool, linux), { command: tool, args: [], source: "dotnet-tool" });
});

test("DOTNET_CLI_HOME moves the tools folder, and Windows looks for the .exe", () => {
  const tool = path.join("/cli-home", ".dotnet", "tools", "codellama-lsp.exe");
  const found = resolveServerCommand(undefined, "/repo/extension", (p) => p === tool, { homeDir: "/home/me", platform: "win32", env: { DOTNET_CLI_HOME: "/cli-home" } });
  assert.equal(found.command, tool);
});

test("with nothing built or installed the tool on PATH is used", () => {
  assert.deepEqual(resolveServerCommand(undefined, "/repo/extension", none, linux), { command: "codellama-lsp", args: [], source: "path" });
});

test("a command with a path exists only if the file does", () => {
  assert.equal(commandExists("/opt/codellama-lsp", linux, (p) => p === "/opt/codellama-lsp"), true);
  assert.equal(commandExists("/nonexistent/codellama-lsp", linux, () => false), false);
});

test("a bare command is looked up on PATH", () => {
  const env = { PATH: "/usr/bin:/usr/local/share/dotnet" };
  assert.equal(commandExists("dotnet", { ...linux, env }, (p) => p === "/usr/local/share/dotnet/dotnet"), true);
  assert.equal(commandExists("dotnet", { ...linux, env }, () => false), false);
  assert.equal(commandExists("dotnet", { ...linux, env: {} }, () => true), false);
});

test("on Windows PATHEXT extensions are tried", () => {
  const env = { Path: "C:\\tools;C:\\dotnet", PATHEXT: ".COM;.EXE" };
  assert.equal(commandExists("dotnet", { platform: "win32", env }, (p) => p === "C:\\dotnet\\dotnet.EXE"), true);
});
