// Bundles the extension and vscode-languageclient into one file (dist/extension.js), so the .vsix carries
// no node_modules: vsce cannot follow npm workspaces' hoisted dependencies, and one file loads faster.
import * as esbuild from "esbuild";

await esbuild.build({
  entryPoints: ["src/extension.ts"],
  bundle: true,
  outfile: "dist/extension.js",
  external: ["vscode"],
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: true,
  minify: process.argv.includes("--minify"),
  logLevel: "warning",
});
