// Unit tests for mapping `codellama.*` settings to server and client settings.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "path";
import { configurationChange, expandPath, isLanguageEnabled, mapSettings } from "../settings";

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test("set values reach the server under their flag names; unset and empty ones are left out", () => {
  const mapped = mapSettings(reader({ model: "TheBloke/CodeLlama-34B-Instruct-GPTQ", revision: "", device: "cuda", contextSize: 4096, maxTokens: null, temperature: 0, debounceMs: 75 }));
  assert.deepEqual(mapped.server, { model: "TheBloke/CodeLlama-34B-Instruct-GPTQ", device: "cuda", contextSize: 4096, temperature: 0, debounceMs: 75 });
  assert.deepEqual(mapped.warnings, []);
});

test("remote backend settings pass through", () => {
  const mapped = mapSettings(reader({ backend: "remote", endpoint: "http://gpu:8000/v1", remoteModel: "codellama", apiKeyEnv: "VLLM_KEY" }));
  assert.deepEqual(mapped.server, { backend: "remote", endpoint: "http://gpu:8000/v1", remoteModel: "codellama", apiKeyEnv: "VLLM_KEY" });
});

test("speculative is auto or off, anything else is dropped with a warning", () => {
  assert.deepEqual(mapSettings(reader({ speculative: "off" })).server, { speculative: "off" });
  const invalid = mapSettings(reader({ speculative: "on" }));
  assert.deepEqual(invalid.server, {});
  assert.match(invalid.warnings.join("\n"), /speculative/);
});

test("remote backend without an endpoint is sent but warned about", () => {
  const mapped = mapSettings(reader({ backend: "remote" }));
  assert.equal(mapped.server.backend, "remote");
  assert.equal(mapped.warnings.length, 1);
  assert.match(mapped.warnings[0], /endpoint/);
});

test("maxPromptTokens reaches the server as an integer of at least 64", () => {
  assert.deepEqual(mapSettings(reader({ maxPromptTokens: 1024 })).server, { maxPromptTokens: 1024 });
  const tooSmall = mapSettings(reader({ maxPromptTokens: 10 }));
  assert.deepEqual(tooSmall.server, {});
  assert.ok(tooSmall.warnings.some((w) => w.includes("codellama.maxPromptTokens")));
});

test("invalid values are dropped with a warning naming the setting", () => {
  const mapped = mapSettings(reader({ device: "tpu", contextSize: 0, maxTokens: 12.5, maxPromptTokens: 1.5, temperature: -1, debounceMs: "fast", promptMode: "chat" }));
  assert.deepEqual(mapped.server, {});
  assert.equal(mapped.warnings.length, 7);
  for (const name of ["device", "contextSize", "maxTokens", "maxPromptTokens", "temperature", "debounceMs", "promptMode"]) {
    assert.ok(mapped.warnings.some((w) => w.includes(`codellama.${name}`)), name);
  }
});

test("client settings default to all languages on, review on, no server path", () => {
  assert.deepEqual(mapSettings(reader({})).client, { serverPath: "", enabledLanguages: ["*"], disabledLanguages: [], reviewEdits: true });
});

test("client settings are not sent to the server", () => {
  const mapped = mapSettings(reader({ serverPath: "/x/codellama-lsp", enabledLanguages: ["python"], disabledLanguages: ["markdown"], reviewEdits: false }));
  assert.deepEqual(mapped.server, {});
  assert.deepEqual(mapped.client, { serverPath: "/x/codellama-lsp", enabledLanguages: ["python"], disabledLanguages: ["markdown"], reviewEdits: false });
});

test("a relative model path resolves against the workspace folder, a model id does not", () => {
  const ws = path.resolve("/work/project");
  assert.equal(mapSettings(reader({ model: "./models/tiny" }), { workspaceFolder: ws }).server.model, path.join(ws, "models", "tiny"));
  assert.equal(mapSettings(reader({ model: "../shared/fixtures/tiny" }), { workspaceFolder: ws }).server.model, path.resolve(ws, "..", "shared", "fixtures", "tiny"));
  assert.equal(mapSettings(reader({ model: "org/model" }), { workspaceFolder: ws }).server.model, "org/model");
});

test("~ and ${workspaceFolder} expand in paths", () => {
  assert.equal(expandPath("~/models/x", { homeDir: "/home/me" }), path.join("/home/me", "models", "x"));
  assert.equal(expandPath("${workspaceFolder}/bin/codellama-lsp", { workspaceFolder: "/ws" }), "/ws/bin/codellama-lsp");
  assert.equal(mapSettings(reader({ serverPath: "~/bin/codellama-lsp" }), { homeDir: "/home/me" }).client.serverPath, path.join("/home/me", "bin", "codellama-lsp"));
});

test("disabled languages win over enabled ones, and * enables the rest", () => {
  const client = { enabledLanguages: ["*"], disabledLanguages: ["markdown"] };
  assert.equal(isLanguageEnabled("typescript", client), true);
  assert.equal(isLanguageEnabled("markdown", client), false);
  const only = { enabledLanguages: ["python", "csharp"], disabledLanguages: ["csharp"] };
  assert.equal(isLanguageEnabled("python", only), true);
  assert.equal(isLanguageEnabled("csharp", only), false);
  assert.equal(isLanguageEnabled("go", only), false);
});

test("didChangeConfiguration carries the settings under the codellama section", () => {
  assert.deepEqual(configurationChange({ maxTokens: 64 }), { settings: { codellama: { maxTokens: 64 } } });
});
