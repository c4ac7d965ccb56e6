// Builds the platform .vsix files with @vscode/vsce, each carrying the server published for its platform, as
// rust-analyzer's extension does: `artifacts/codellama-lsp-<target>-<version>.vsix` at the repository root.
// The server is self-contained (the .NET runtime inside, ~37 MB per .vsix against ~3 MB framework-dependent;
// docs/vscode.md *Packaging* says why), so installing the .vsix and setting codellama.model is all a user does.
// Targets: `--host` (this machine's platform only, what the end-to-end test installs), else CODELLAMA_VSIX_TARGETS
// (comma-separated VS Code targets), else all of `targets` below; CI builds linux-x64 only. The version comes from Nerdbank.GitVersioning (version.json + git height, through the nbgv tool
// that the npm package `nerdbank-gitversioning` runs with dotnet), the number `codellama-lsp --version` prints.
// package.json stays unchanged; the published server is staged in extension/server/ and removed afterwards, so
// a development checkout never starts a stale bundled server.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const extensionDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(extensionDir, "..");
const require = createRequire(import.meta.url);

/** VS Code's platform target -> .NET runtime identifier. Each cross-publish needs only NuGet's runtime packs. */
const targets = { "linux-x64": "linux-x64", "linux-arm64": "linux-arm64", "win32-x64": "win-x64", "darwin-arm64": "osx-arm64" };

/** major.minor.patch from nbgv; VS Code wants exactly three numbers, so the commit id stays out. */
async function extensionVersion() {
  if (process.env.CODELLAMA_VERSION) return process.env.CODELLAMA_VERSION;
  const nbgv = require("nerdbank-gitversioning");
  try {
    const version = await nbgv.getVersion(repoRoot);
    return version.simpleVersion;
  } catch (error) {
    throw new Error(`Could not compute the version with nbgv (needs dotnet and the git history; set CODELLAMA_VERSION to override): ${error}`);
  }
}

function selectedTargets() {
  const host = `${process.platform}-${process.arch}`;
  if (process.argv.includes("--host") && !(host in targets)) throw new Error(`No server target for this machine (${host}); known: ${Object.keys(targets).join(", ")}.`);
  const wanted = (process.argv.includes("--host") ? host : (process.env.CODELLAMA_VSIX_TARGETS ?? Object.keys(targets).join(","))).split(",").map((t) => t.trim()).filter((t) => t !== "");
  const unknown = wanted.filter((t) => !(t in targets));
  if (unknown.length > 0) throw new Error(`Unknown CODELLAMA_VSIX_TARGETS ${unknown.join(", ")}; known: ${Object.keys(targets).join(", ")}.`);
  return wanted;
}

/** Total size of a folder's files, in bytes. */
function folderBytes(dir) {
  return execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0] | 0;
}

const version = await extensionVersion();
if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`Version '${version}' is not major.minor.patch.`);
const outDir = join(repoRoot, "artifacts");
mkdirSync(outDir, { recursive: true });
const staged = join(extensionDir, "server"); // serverPath.ts: bundledServerFolder
const vsce = join(dirname(require.resolve("@vscode/vsce/package.json")), "vsce");
try {
  for (const target of selectedTargets()) {
    rmSync(staged, { recursive: true, force: true });
    // Build output to stderr, so the only stdout lines are what was packaged.
    execFileSync("dotnet", ["publish", join(repoRoot, "server", "CodeLlamaLsp.Server"), "-c", "Release", "-r", targets[target], "--self-contained", "true", "-o", staged, "--nologo", "-v", "quiet"], {
      cwd: repoRoot,
      stdio: ["ignore", process.stderr, process.stderr],
    });
    const out = join(outDir, `codellama-lsp-${target}-${version}.vsix`);
    execFileSync(process.execPath, [vsce, "package", version, "--target", target, "--no-update-package-json", "--no-git-tag-version", "--no-dependencies", "--skip-license", "--allow-missing-repository", "--out", out], {
      cwd: extensionDir,
      stdio: ["ignore", process.stderr, process.stderr],
    });
    console.log(`Packaged ${out} (${(statSync(out).size / 1e6).toFixed(1)} MB; server ${(folderBytes(staged) / 1e6).toFixed(1)} MB unpacked)`);
  }
} finally {
  rmSync(staged, { recursive: true, force: true });
}
