// Finds the codellama-lsp server to start: an explicit setting wins, then a build in this checkout.
import * as fs from "fs";
import * as path from "path";

/** How to start the server: a command and its arguments. */
export interface ServerCommand {
  command: string;
  args: string[];
}

/**
 * Resolves the server command. A configured path that ends in .dll runs through `dotnet`; any other
 * configured path is run as it is. Without a setting, the Release then Debug build of the checkout that
 * holds the extension is used, and last `codellama-lsp` on PATH (an installed .NET tool).
 */
export function resolveServerCommand(configuredPath: string | undefined, extensionDir: string, exists: (p: string) => boolean = fs.existsSync): ServerCommand {
  if (configuredPath && configuredPath.trim() !== "") {
    return commandFor(configuredPath.trim());
  }
  const repoRoot = path.resolve(extensionDir, "..");
  for (const configuration of ["Release", "Debug"]) {
    const dll = path.join(repoRoot, "server", "CodeLlamaLsp.Server", "bin", configuration, "net10.0", "codellama-lsp.dll");
    if (exists(dll)) {
      return commandFor(dll);
    }
  }
  return { command: "codellama-lsp", args: [] };
}

function commandFor(serverPath: string): ServerCommand {
  return serverPath.endsWith(".dll") ? { command: "dotnet", args: [serverPath] } : { command: serverPath, args: [] };
}
