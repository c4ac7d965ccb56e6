// Turns a failed server start or a crash (spawn error, exit code, the tail of stderr, an error status) into
// one notification that says what is wrong and what to do, and bounds automatic restarts after crashes.

/** What is known about a failure. */
export interface FailureEvidence {
  /** The command that was started, e.g. `dotnet` or `/usr/local/bin/codellama-lsp`. */
  command: string;
  /** Node's error code when the process could not be spawned, e.g. ENOENT or EACCES. */
  spawnErrorCode?: string;
  exitCode?: number | null;
  /** The last lines the server wrote to stderr. */
  stderrTail?: string;
  /** The message of a codellama/status error notification. */
  statusMessage?: string;
}

export type ProblemKind = "dotnet-missing" | "server-missing" | "model-missing" | "gpu-unavailable" | "remote-unreachable" | "server-error" | "crashed";

/** An action button on the notification; the extension maps each to a command. */
export type ProblemAction = "showLog" | "openSettings" | "installDotnet" | "useCpu" | "restart";

export interface StartupProblem {
  kind: ProblemKind;
  message: string;
  actions: ProblemAction[];
}

const dotnetMissing = /You must install or update \.NET|framework 'Microsoft\.NETCore\.App', version '[^']*' \(\w+\) was not found|No frameworks were found|dotnet: (command )?not found|The application to execute does not exist|A fatal error was encountered\. The library 'libhostpolicy/i;
const modelMissing = /model\b[^\n]*(not found|does not exist|missing|no such)|(config\.json|safetensors|tokenizer\.model|quantize_config\.json)[^\n]*(not found|does not exist|missing)|no model (was )?(configured|given|set)|could not find (the )?model/i;
const gpuMissing = /\bno (CUDA|GPU)\b|CUDA[^\n]*(not available|unavailable|not found|failed|error)|no (usable|compatible) (GPU|device|accelerator)|libcuda|compute capability|out of (GPU|device) memory/i;
const remoteDown = /ECONNREFUSED|connection refused|endpoint[^\n]*(unreachable|not reachable|failed)|No connection could be made|HttpRequestException/i;

/** Classifies a failure and words the notification. */
export function describeProblem(evidence: FailureEvidence): StartupProblem {
  const text = [evidence.statusMessage, evidence.stderrTail].filter((part) => part !== undefined && part !== "").join("\n");
  const isDotnet = /(^|[\\/])dotnet(\.exe)?$/i.test(evidence.command);
  if (evidence.spawnErrorCode === "ENOENT" && isDotnet) {
    return { kind: "dotnet-missing", message: "CodeLlama: the .NET 10 runtime was not found (`dotnet` is not on PATH). Install .NET 10 from https://dot.net, or set `codellama.serverPath` to an installed `codellama-lsp`.", actions: ["installDotnet", "openSettings", "showLog"] };
  }
  if (evidence.spawnErrorCode === "ENOENT" || evidence.spawnErrorCode === "EACCES") {
    const why = evidence.spawnErrorCode === "EACCES" ? "cannot be executed (permission denied)" : "was not found";
    // Each way named here works as written: the platform .vsix carries the server; the tool is packed from a checkout.
    return {
      kind: "server-missing",
      message: `CodeLlama: the language server \`${evidence.command}\` ${why}. Install the extension's .vsix for your platform (it carries the server), set \`codellama.serverPath\`, or install the .NET tool from a checkout: \`npm run pack-tool && dotnet tool install --global --add-source artifacts/tool --prerelease codellama-lsp\`.`,
      actions: ["openSettings", "showLog"],
    };
  }
  if (dotnetMissing.test(text)) {
    return { kind: "dotnet-missing", message: "CodeLlama: the server needs the .NET 10 runtime, which is missing or too old. Install .NET 10 from https://dot.net and restart the server.", actions: ["installDotnet", "showLog"] };
  }
  if (modelMissing.test(text)) {
    return { kind: "model-missing", message: `CodeLlama: no model could be loaded${firstLine(text)}. Set \`codellama.model\` to a GPTQ checkpoint folder or to a model id in the local Hugging Face cache (nothing is downloaded).`, actions: ["openSettings", "showLog"] };
  }
  if (gpuMissing.test(text)) {
    return { kind: "gpu-unavailable", message: `CodeLlama: no usable GPU${firstLine(text)}. Set \`codellama.device\` to \`cpu\` (much slower) or use a remote endpoint (\`codellama.backend\`: \`remote\`).`, actions: ["useCpu", "openSettings", "showLog"] };
  }
  if (remoteDown.test(text)) {
    return { kind: "remote-unreachable", message: `CodeLlama: the remote endpoint could not be reached${firstLine(text)}. Check \`codellama.endpoint\` and that the server there is running.`, actions: ["openSettings", "showLog"] };
  }
  if (evidence.statusMessage && (evidence.exitCode === undefined || evidence.exitCode === null)) {
    // The server is up and said what is wrong: quote it rather than guess.
    return { kind: "server-error", message: `CodeLlama: ${evidence.statusMessage.trim()}`, actions: ["showLog", "openSettings", "restart"] };
  }
  const exit = evidence.exitCode === undefined || evidence.exitCode === null ? "" : ` (exit code ${evidence.exitCode})`;
  const detail = evidence.statusMessage ? `: ${evidence.statusMessage.trim()}` : "";
  return { kind: "crashed", message: `CodeLlama: the language server stopped${exit}${detail}. The log has the details.`, actions: ["showLog", "restart"] };
}

/** The first non-empty line of the evidence, as `: line`, so the notification quotes the server. */
function firstLine(text: string): string {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== "");
  if (line === undefined) return "";
  return `: ${line.length > 200 ? `${line.slice(0, 197)}…` : line}`;
}

/** Keeps the last lines of a stream (the server's stderr) for {@link describeProblem}. */
export class LineTail {
  private readonly lines: string[] = [];
  constructor(private readonly capacity = 40) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  clear(): void {
    this.lines.length = 0;
  }

  toString(): string {
    return this.lines.join("\n");
  }
}

/**
 * Allows a restart after a crash unless `maxRestarts` crashes already happened within `windowMs`,
 * so a server that dies at once on every start is not restarted forever.
 */
export class RestartPolicy {
  private crashes: number[] = [];
  constructor(
    readonly maxRestarts = 3,
    readonly windowMs = 3 * 60_000,
  ) {}

  /** Records a crash at `now` (ms) and says whether to restart. */
  shouldRestart(now: number): boolean {
    this.crashes = this.crashes.filter((time) => now - time < this.windowMs);
    this.crashes.push(now);
    return this.crashes.length <= this.maxRestarts;
  }

  /** A deliberate restart (the user's command) starts counting afresh. */
  reset(): void {
    this.crashes = [];
  }
}
