// Finds the codellama-lsp server to start: an explicit setting wins, then the server bundled in the platform
// .vsix, then a build in this checkout, then the .NET global tool's install folder, and last `codellama-lsp` on PATH.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** Where the command came from, for the log and for the "not found" notification. */
export type ServerSource = "setting" | "bundled" | "checkout" | "dotnet-tool" | "path";

/** How to start the server: a command and its arguments. */
export interface ServerCommand {
  command: string;
  args: string[];
  source: ServerSource;
}

/**
 * The folder of the extension where `npm run package` puts the published server (scripts/package.mjs); the
 * platform .vsix files carry it, a development checkout does not.
 */
export const bundledServerFolder = "server";

/** The machine facts resolution depends on, injectable for tests. */
export interface ResolveEnvironment {
  homeDir?: string;
  platform?: NodeJS.Platform;
  /** Environment variables; DOTNET_CLI_HOME moves the global tools folder (~/.dotnet/tools) when set. */
  env?: Record<string, string | undefined>;
}

/**
 * Resolves the server command. A configured path that ends in .dll runs through `dotnet`; any other
 * configured path is run as it is. Without a setting, the server bundled in the extension's platform package
 * is used, then the Release then Debug build of the checkout that holds the extension (development),
 * then `~/.dotnet/tools/codellama-lsp` (where `dotnet tool install --global` puts it, often missing from the
 * PATH an editor launched from a desktop sees), and last `codellama-lsp` on PATH.
 */
export function resolveServerCommand(
  configuredPath: string | undefined,
  extensionDir: string,
  exists: (p: string) => boolean = fs.existsSync,
  environment: ResolveEnvironment = {},
): ServerCommand {
  if (configuredPath && configuredPath.trim() !== "") {
    return commandFor(configuredPath.trim(), "setting");
  }
  const platform = environment.platform ?? process.platform;
  const executable = platform === "win32" ? "codellama-lsp.exe" : "codellama-lsp";
  const bundled = path.join(extensionDir, bundledServerFolder, executable);
  if (exists(bundled)) {
    return { command: bundled, args: [], source: "bundled" };
  }
  const repoRoot = path.resolve(extensionDir, "..");
  for (const configuration of ["Release", "Debug"]) {
    const dll = path.join(repoRoot, "server", "CodeLlamaLsp.Server", "bin", configuration, "net10.0", "codellama-lsp.dll");
    if (exists(dll)) {
      return commandFor(dll, "checkout");
    }
  }
  const env = environment.env ?? process.env;
  const toolsHome = env.DOTNET_CLI_HOME || (environment.homeDir ?? os.homedir());
  const tool = path.join(toolsHome, ".dotnet", "tools", executable);
  if (exists(tool)) {
    return { command: tool, args: [], source: "dotnet-tool" };
  }
  return { command: "codellama-lsp", args: [], source: "path" };
}

function commandFor(serverPath: string, source: ServerSource): ServerCommand {
  return serverPath.toLowerCase().endsWith(".dll") ? { command: "dotnet", args: [serverPath], source } : { command: serverPath, args: [], source };
}

/**
 * Whether `command` can be found: a path is checked as it is, a bare name is looked up on PATH (with PATHEXT
 * on Windows). Checked before the language client starts, so a missing `dotnet` or server gets the
 * extension's one clear notification rather than the client's generic connection error.
 */
export function commandExists(command: string, environment: ResolveEnvironment = {}, exists: (p: string) => boolean = fs.existsSync): boolean {
  const platform = environment.platform ?? process.platform;
  const env = environment.env ?? process.env;
  const pathModule = platform === "win32" ? path.win32 : path.posix;
  if (command.includes("/") || (platform === "win32" && command.includes("\\"))) return exists(command);
  const extensions = platform === "win32" ? ["", ...(env.PATHEXT ?? ".EXE;.CMD;.BAT;.COM").split(";").filter((e) => e !== "")] : [""];
  const folders = (env.PATH ?? env.Path ?? "").split(platform === "win32" ? ";" : ":").filter((f) => f !== "");
  return folders.some((folder) => extensions.some((extension) => exists(pathModule.join(folder, command + extension))));
}
