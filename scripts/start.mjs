// `npm start --silent -- ARGS`: runs the codellama-lsp built in this checkout with ARGS, building it (Release)
// first only when a source is newer than the last build. The build's output goes to stderr, so stdout carries
// only the server's own output: the LSP stream with --stdio, one JSON object with `generate --json`. Without a
// rebuild the start costs what `dotnet codellama-lsp.dll` costs, not the seconds `dotnet run` spends checking.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const project = join(root, "server", "CodeLlamaLsp.Server");
const output = join(project, "bin", "Release", "net10.0");
const dll = join(output, "codellama-lsp.dll");
// Written after a build that this script ran; compared with the sources' times (MSBuild may leave the dll's time unchanged).
const stamp = join(output, ".built-by-npm-start");

/** The newest modification time among the server's sources and the build settings that shape them. */
function newestSource() {
  let newest = 0;
  const visit = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === "bin" || entry.name === "obj") continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (/\.(cs|csproj|props)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  visit(join(root, "server"));
  for (const file of ["Directory.Build.props", "Directory.Packages.props", "global.json"]) newest = Math.max(newest, statSync(join(root, file)).mtimeMs);
  return newest;
}

if (!existsSync(dll) || !existsSync(stamp) || statSync(stamp).mtimeMs < newestSource()) {
  const build = spawnSync("dotnet", ["build", project, "-c", "Release", "--nologo", "-v", "quiet"], { cwd: root, stdio: ["ignore", process.stderr, process.stderr] });
  if (build.status !== 0) {
    console.error(`codellama-lsp: building ${project} failed (exit ${build.status ?? build.error}).`);
    process.exit(build.status || 1);
  }
  writeFileSync(stamp, "");
}

const server = spawn("dotnet", [dll, ...process.argv.slice(2)], { cwd: process.cwd(), stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.kill(signal));
server.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
