// Builds the .vsix with @vscode/vsce, versioned in step with the server: the version comes from
// Nerdbank.GitVersioning (version.json + git height, through the nbgv tool that the npm package
// `nerdbank-gitversioning` runs with dotnet), the same number `codellama-lsp --version` prints.
// Writes artifacts/codellama-lsp-<version>.vsix at the repository root and leaves package.json unchanged.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const extensionDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(extensionDir, "..");
const require = createRequire(import.meta.url);

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

const version = await extensionVersion();
if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`Version '${version}' is not major.minor.patch.`);
const outDir = join(repoRoot, "artifacts");
mkdirSync(outDir, { recursive: true });
const out = join(outDir, `codellama-lsp-${version}.vsix`);
const vsce = join(dirname(require.resolve("@vscode/vsce/package.json")), "vsce");
execFileSync(process.execPath, [vsce, "package", version, "--no-update-package-json", "--no-git-tag-version", "--no-dependencies", "--skip-license", "--allow-missing-repository", "--out", out], {
  cwd: extensionDir,
  stdio: "inherit",
});
console.log(`Packaged ${out}`);
