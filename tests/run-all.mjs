// Runs every test suite (the .NET test projects through Microsoft.Testing.Platform, then the npm
// workspaces) and ends with one line "N passed, N failed" summed over all of them. Exits non-zero
// when any suite fails or reports nothing. This is the README's test command (`npm test`).
// With CODELLAMA_E2E=1 (set by .ci/run) it also runs the VS Code end-to-end test: the packaged extension
// in a real VS Code (code-server) driven by headless Chromium, installed on first use (see docs/vscode.md).
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Runs a command, echoing its output, and resolves with the exit code and the whole output. */
function run(command, args) {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: process.env });
    let output = "";
    const echo = (stream) => (chunk) => {
      output += chunk;
      stream.write(chunk);
    };
    child.stdout.on("data", echo(process.stdout));
    child.stderr.on("data", echo(process.stderr));
    child.on("close", (code) => resolveRun({ code: code ?? 1, output }));
  });
}

/** The last value of a "label: N" or "# label N" counter in the output, or null. */
function lastCount(output, pattern) {
  const matches = [...output.matchAll(pattern)];
  return matches.length ? Number(matches[matches.length - 1][1]) : null;
}

const suites = [
  {
    name: "dotnet",
    command: "dotnet",
    args: ["test", "--solution", "CodeLlamaLsp.sln", "-c", "Release"],
    passed: (o) => lastCount(o, /^\s*succeeded:\s*(\d+)/gm),
    failed: (o) => lastCount(o, /^\s*failed:\s*(\d+)/gm),
  },
  {
    name: "npm workspaces",
    command: "npm",
    args: ["test", "--workspaces", "--if-present"],
    passed: (o) => [...o.matchAll(/^# pass (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0),
    failed: (o) => [...o.matchAll(/^# fail (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0),
  },
];

if (process.env.CODELLAMA_E2E === "1") {
  const e2eCounts = {
    passed: (o) => [...o.matchAll(/^PASS /gm)].length,
    failed: (o) => [...o.matchAll(/^FAIL /gm)].length,
  };
  // The real server (tiny fixture, random weights) first; then the stub server, whose fixed answers reach
  // the paths random weights cannot (Fix's diff review with Apply).
  suites.push({ name: "vscode end-to-end (real server)", command: "npm", args: ["run", "e2e", "--silent"], ...e2eCounts });
  suites.push({ name: "vscode end-to-end (stub server)", command: "node", args: ["extension/e2e/run-e2e.mjs", "--server", "stub"], ...e2eCounts });
}

let passed = 0;
let failed = 0;
let broken = false;
for (const suite of suites) {
  const { code, output } = await run(suite.command, suite.args);
  const p = suite.passed(output);
  const f = suite.failed(output);
  if (p === null || f === null || (code !== 0 && f === 0)) {
    console.error(`suite '${suite.name}' exited ${code} without a usable count: counted as one failure`);
    failed += (f ?? 0) + 1;
    passed += p ?? 0;
    broken = true;
    continue;
  }
  passed += p;
  failed += f;
  if (code !== 0) broken = true;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken ? 1 : 0);
