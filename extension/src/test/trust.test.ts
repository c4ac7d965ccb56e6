// Workspace trust: a repository's .vscode/settings.json must not pick the program the extension runs, the
// model file the server reads, the endpoint prompts go to or the secret sent there (docs/scaling.md, "Trust").
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));
const properties: Record<string, { scope?: string }> = manifest.contributes.configuration.properties;
const sensitive = ["serverPath", "model", "revision", "backend", "endpoint", "apiKeyEnv"].map((name) => `codellama.${name}`);

test("settings that pick a binary, a model, an endpoint or a secret are restricted in untrusted workspaces", () => {
  const untrusted = manifest.capabilities?.untrustedWorkspaces;
  assert.equal(untrusted?.supported, "limited");
  assert.deepEqual([...untrusted.restrictedConfigurations].sort(), [...sensitive].sort());
  for (const name of sensitive) assert.ok(name in properties, `${name} is a contributed setting`);
});

test("the endpoint and the API key variable can only be set in user settings", () => {
  assert.equal(properties["codellama.endpoint"].scope, "machine");
  assert.equal(properties["codellama.apiKeyEnv"].scope, "machine");
});
