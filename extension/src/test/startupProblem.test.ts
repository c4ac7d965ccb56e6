// Unit tests for classifying start failures and crashes, and for the crash restart limit.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { describeProblem, LineTail, RestartPolicy } from "../startupProblem";

test("dotnet missing from PATH says to install .NET", () => {
  const problem = describeProblem({ command: "dotnet", spawnErrorCode: "ENOENT" });
  assert.equal(problem.kind, "dotnet-missing");
  assert.match(problem.message, /\.NET 10/);
  assert.ok(problem.actions.includes("installDotnet"));
});

test("a missing server executable says how to install or point to it", () => {
  const problem = describeProblem({ command: "codellama-lsp", spawnErrorCode: "ENOENT" });
  assert.equal(problem.kind, "server-missing");
  assert.match(problem.message, /\.vsix for your platform/);
  // The install command must work as written (ToolPackageTests runs it): packed from a checkout, a prerelease off main.
  assert.match(problem.message, /npm run pack-tool && dotnet tool install --global --add-source artifacts\/tool --prerelease codellama-lsp/);
  assert.match(problem.message, /codellama\.serverPath/);
});

test("the .NET host's missing framework message is recognised", () => {
  const stderr = "You must install or update .NET to run this application.\nApp: /x/codellama-lsp.dll\nFramework: 'Microsoft.NETCore.App', version '10.0.0' (x64)";
  assert.equal(describeProblem({ command: "dotnet", exitCode: 150, stderrTail: stderr }).kind, "dotnet-missing");
});

test("a missing model points at codellama.model and quotes the server", () => {
  const problem = describeProblem({ command: "dotnet", statusMessage: "Model folder '/models/x' does not exist" });
  assert.equal(problem.kind, "model-missing");
  assert.match(problem.message, /codellama\.model/);
  assert.match(problem.message, /\/models\/x/);
});

test("the server's own no-model message is recognised", () => {
  const message = "No model configured: set codellama.model (a local GPTQ checkpoint folder) or start with --model.";
  assert.equal(describeProblem({ command: "dotnet", statusMessage: message }).kind, "model-missing");
});

test("no GPU suggests the CPU or a remote endpoint", () => {
  const problem = describeProblem({ command: "codellama-lsp", statusMessage: "No CUDA device found (device=cuda)" });
  assert.equal(problem.kind, "gpu-unavailable");
  assert.ok(problem.actions.includes("useCpu"));
});

test("an unreachable endpoint is named", () => {
  assert.equal(describeProblem({ command: "codellama-lsp", stderrTail: "HttpRequestException: Connection refused (gpu:8000)" }).kind, "remote-unreachable");
});

test("another error the running server reports is quoted as it is", () => {
  const problem = describeProblem({ command: "dotnet", statusMessage: "CodeLlama could not load /m: this build has no model backend wired in yet" });
  assert.equal(problem.kind, "server-error");
  assert.equal(problem.message, "CodeLlama: CodeLlama could not load /m: this build has no model backend wired in yet");
});

test("anything else is a crash with the exit code and a restart action", () => {
  const problem = describeProblem({ command: "dotnet", exitCode: 134, stderrTail: "Unhandled exception. System.AccessViolationException" });
  assert.equal(problem.kind, "crashed");
  assert.match(problem.message, /exit code 134/);
  assert.deepEqual(problem.actions, ["showLog", "restart"]);
});

test("the restart policy allows a few crashes in the window, then stops", () => {
  const policy = new RestartPolicy(3, 60_000);
  assert.equal(policy.shouldRestart(0), true);
  assert.equal(policy.shouldRestart(1_000), true);
  assert.equal(policy.shouldRestart(2_000), true);
  assert.equal(policy.shouldRestart(3_000), false);
});

test("crashes older than the window are forgotten, and a reset starts afresh", () => {
  const policy = new RestartPolicy(2, 10_000);
  policy.shouldRestart(0);
  policy.shouldRestart(1_000);
  assert.equal(policy.shouldRestart(20_000), true);
  assert.equal(policy.shouldRestart(21_000), true);
  assert.equal(policy.shouldRestart(22_000), false);
  policy.reset();
  assert.equal(policy.shouldRestart(23_000), true);
});

test("the stderr tail keeps only the last lines", () => {
  const tail = new LineTail(2);
  tail.push("a");
  tail.push("b");
  tail.push("c");
  assert.equal(tail.toString(), "b\nc");
  tail.clear();
  assert.equal(tail.toString(), "");
});
