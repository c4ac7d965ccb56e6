// The codellama-lsp custom protocol, mirrored from server/CodeLlamaLsp.Server/Protocol/CustomMethods.cs
// and docs/lsp-extensions.md. Every custom name the extension sends or receives is spelled here and only here.

/** A zero-based LSP position (UTF-16 code units). */
export interface LspPosition {
  line: number;
  character: number;
}

/** An LSP range. */
export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** `codellama/status`: server -> client notification, sent on every change of state. */
export const StatusNotificationMethod = "codellama/status";

/** The server's states, in the order a healthy start passes through them (error can come at any time). */
export type ServerState = "loading" | "ready" | "busy" | "error";

export interface StatusParams {
  state: ServerState;
  /** Text for a status bar item or its tooltip. */
  message?: string;
  /** 0..1, present while loading. */
  progress?: number;
}

/** `codellama/explanation`: server -> client notification streaming the Explain command's markdown. */
export const ExplanationNotificationMethod = "codellama/explanation";

export interface ExplanationParams {
  /** Identifies one Explain run; successive notifications of a run share it. */
  token: string;
  uri: string;
  range: LspRange;
  /** The whole text so far (not a delta). */
  markdown: string;
  done: boolean;
}

/** The server's code action commands (workspace/executeCommand), each taking one {@link CodeActionCommandArgs}. */
export const ServerCommands = {
  explain: "codellama.explain",
  fix: "codellama.fix",
  generateDocs: "codellama.generateDocs",
  generateTests: "codellama.generateTests",
} as const;

export type ServerCommandName = (typeof ServerCommands)[keyof typeof ServerCommands];

/** The commands whose result is an edit, sent to the client as workspace/applyEdit for review. */
export const EditCommands: readonly ServerCommandName[] = [ServerCommands.fix, ServerCommands.generateDocs, ServerCommands.generateTests];

/** An LSP diagnostic, as far as Fix reads it. */
export interface LspDiagnostic {
  range: LspRange;
  message: string;
  severity?: 1 | 2 | 3 | 4;
  source?: string;
  code?: string | number;
}

export interface CodeActionCommandArgs {
  uri: string;
  range: LspRange;
  /** Fix: the diagnostics in the range it should fix (the server offers Fix only where there are some). */
  diagnostics?: LspDiagnostic[];
}

/** Result of `codellama.explain`. */
export interface ExplainResult {
  markdown: string;
}

/** Result of `codellama.fix`, `codellama.generateDocs` and `codellama.generateTests` (edit is an LSP WorkspaceEdit). */
export interface EditCommandResult {
  applied: boolean;
  edit: unknown;
}

/** The configuration section: VS Code settings `codellama.*`, and the key of didChangeConfiguration's settings. */
export const ConfigurationSection = "codellama";

/**
 * The settings the server understands, named as its command-line flags. They travel as the whole of
 * initializationOptions at start, and as `{ settings: { codellama: ServerSettings } }` in
 * workspace/didChangeConfiguration. Unset ones are left out, so the server keeps its defaults.
 */
export interface ServerSettings {
  model?: string;
  revision?: string;
  device?: "cpu" | "cuda" | "auto";
  contextSize?: number;
  maxTokens?: number;
  maxPromptTokens?: number;
  temperature?: number;
  debounceMs?: number;
  promptMode?: "auto" | "instruct" | "infill";
  logLevel?: string;
  backend?: "in-process" | "remote";
  endpoint?: string;
  remoteModel?: string;
  apiKeyEnv?: string;
  allowInsecureHttp?: boolean;
  speculative?: "auto" | "off";
}

/** The keys of {@link ServerSettings}, in the order docs/lsp-extensions.md lists them. */
export const ServerSettingNames: readonly (keyof ServerSettings)[] = [
  "model",
  "revision",
  "device",
  "contextSize",
  "maxTokens",
  "maxPromptTokens",
  "temperature",
  "debounceMs",
  "promptMode",
  "logLevel",
  "backend",
  "endpoint",
  "remoteModel",
  "apiKeyEnv",
  "allowInsecureHttp",
  "speculative",
];
