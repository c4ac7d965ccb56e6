// Turns the user's `codellama.*` settings into what the server receives (initializationOptions and
// didChangeConfiguration) and what the extension itself uses; pure, so it is tested without VS Code.
import * as os from "os";
import * as path from "path";
import { ConfigurationSection, ServerSettings } from "./protocol";

/** Reads one setting of the `codellama` section; undefined when unset. */
export type SettingReader = (key: string) => unknown;

/** Settings the extension uses itself and does not send to the server. */
export interface ClientSettings {
  serverPath: string;
  /** Language ids with inline completions on; "*" means all. */
  enabledLanguages: string[];
  /** Language ids with inline completions off; wins over enabledLanguages. */
  disabledLanguages: string[];
  /** Show edits from Fix / Generate docs / Generate tests in the refactor preview before they apply. */
  reviewEdits: boolean;
}

export interface MappedSettings {
  server: ServerSettings;
  client: ClientSettings;
  /** One sentence per ignored value, for the log. */
  warnings: string[];
}

/** Where relative paths and `${workspaceFolder}` point, and `~`. */
export interface PathContext {
  workspaceFolder?: string;
  homeDir?: string;
}

const devices = ["cpu", "cuda", "auto"] as const;
const promptModes = ["auto", "instruct", "infill"] as const;
const backends = ["in-process", "remote"] as const;
const logLevels = ["trace", "debug", "information", "warning", "error"] as const;
const speculativeModes = ["auto", "off"] as const;

/** Maps the `codellama` section to server and client settings, leaving out unset and invalid values. */
export function mapSettings(read: SettingReader, paths: PathContext = {}): MappedSettings {
  const warnings: string[] = [];
  const server: ServerSettings = {};

  const model = text(read("model"));
  if (model !== undefined) server.model = expandPath(model, paths);
  const revision = text(read("revision"));
  if (revision !== undefined) server.revision = revision;
  const device = oneOf(read("device"), devices, "device", warnings);
  if (device !== undefined) server.device = device;
  const contextSize = integer(read("contextSize"), "contextSize", 1, warnings);
  if (contextSize !== undefined) server.contextSize = contextSize;
  const maxTokens = integer(read("maxTokens"), "maxTokens", 1, warnings);
  if (maxTokens !== undefined) server.maxTokens = maxTokens;
  const maxPromptTokens = integer(read("maxPromptTokens"), "maxPromptTokens", 64, warnings);
  if (maxPromptTokens !== undefined) server.maxPromptTokens = maxPromptTokens;
  const temperature = finite(read("temperature"), "temperature", 0, warnings);
  if (temperature !== undefined) server.temperature = temperature;
  const debounceMs = integer(read("debounceMs"), "debounceMs", 0, warnings);
  if (debounceMs !== undefined) server.debounceMs = debounceMs;
  const promptMode = oneOf(read("promptMode"), promptModes, "promptMode", warnings);
  if (promptMode !== undefined) server.promptMode = promptMode;
  const logLevel = oneOf(read("logLevel"), logLevels, "logLevel", warnings);
  if (logLevel !== undefined) server.logLevel = logLevel;
  const backend = oneOf(read("backend"), backends, "backend", warnings);
  if (backend !== undefined) server.backend = backend;
  const endpoint = text(read("endpoint"));
  if (endpoint !== undefined) server.endpoint = endpoint;
  const remoteModel = text(read("remoteModel"));
  if (remoteModel !== undefined) server.remoteModel = remoteModel;
  const apiKeyEnv = text(read("apiKeyEnv"));
  if (apiKeyEnv !== undefined) server.apiKeyEnv = apiKeyEnv;
  if (read("allowInsecureHttp") === true) server.allowInsecureHttp = true;
  const speculative = oneOf(read("speculative"), speculativeModes, "speculative", warnings);
  if (speculative !== undefined) server.speculative = speculative;
  if (server.backend === "remote" && server.endpoint === undefined) {
    warnings.push(`${ConfigurationSection}.backend is "remote" but ${ConfigurationSection}.endpoint is empty: the server will report the missing endpoint.`);
  }

  const serverPath = text(read("serverPath"));
  const client: ClientSettings = {
    serverPath: serverPath === undefined ? "" : expandPath(serverPath, paths),
    enabledLanguages: languageList(read("enabledLanguages")) ?? ["*"],
    disabledLanguages: languageList(read("disabledLanguages")) ?? [],
    reviewEdits: read("reviewEdits") !== false,
  };
  return { server, client, warnings };
}

/** Whether inline completions are on for a language: disabled wins, then "*" or the id in enabled. */
export function isLanguageEnabled(languageId: string, client: Pick<ClientSettings, "enabledLanguages" | "disabledLanguages">): boolean {
  if (client.disabledLanguages.includes(languageId)) return false;
  return client.enabledLanguages.includes("*") || client.enabledLanguages.includes(languageId);
}

/** The didChangeConfiguration payload for the server. */
export function configurationChange(server: ServerSettings): { settings: Record<string, ServerSettings> } {
  return { settings: { [ConfigurationSection]: server } };
}

/**
 * Expands `${workspaceFolder}`, `~` and paths that start with `./` or `../` (against the workspace folder).
 * Anything else (an absolute path or a model id such as `TheBloke/CodeLlama-34B-Instruct-GPTQ`) passes as it is.
 */
export function expandPath(value: string, paths: PathContext): string {
  let result = value;
  if (paths.workspaceFolder !== undefined) result = result.split("${workspaceFolder}").join(paths.workspaceFolder);
  const home = paths.homeDir ?? os.homedir();
  if (result === "~") return home;
  if (result.startsWith("~/") || result.startsWith("~\\")) return path.join(home, result.slice(2));
  if (paths.workspaceFolder !== undefined && /^\.\.?([\\/]|$)/.test(result)) return path.resolve(paths.workspaceFolder, result);
  return result;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], name: string, warnings: string[]): T | undefined {
  const given = text(value);
  if (given === undefined) return undefined;
  if ((allowed as readonly string[]).includes(given)) return given as T;
  warnings.push(`${ConfigurationSection}.${name} "${given}" is not one of ${allowed.join(", ")}: ignored.`);
  return undefined;
}

function integer(value: unknown, name: string, min: number, warnings: string[]): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "number" && Number.isInteger(value) && value >= min) return value;
  warnings.push(`${ConfigurationSection}.${name} ${JSON.stringify(value)} is not a whole number of at least ${min}: ignored.`);
  return undefined;
}

function finite(value: unknown, name: string, min: number, warnings: string[]): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "number" && Number.isFinite(value) && value >= min) return value;
  warnings.push(`${ConfigurationSection}.${name} ${JSON.stringify(value)} is not a number of at least ${min}: ignored.`);
  return undefined;
}

function languageList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.filter((item): item is string => typeof item === "string" && item.trim() !== "").map((item) => item.trim());
}
