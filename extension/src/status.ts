// Decides what the status bar item shows from the client's lifecycle and the server's codellama/status
// notifications, and when an error deserves a notification; pure, so it is tested without VS Code.
import { ServerState, StatusParams } from "./protocol";

/** The client's own view of the server process, apart from what the server reports. */
export type ClientPhase = "starting" | "running" | "restarting" | "stopped" | "failed";

/** What the status bar item shows. */
export interface StatusView {
  /** Text with VS Code codicons, e.g. `$(sync~spin) CodeLlama 42%`. */
  text: string;
  tooltip: string;
  /** error and warning colour the item's background. */
  severity: "normal" | "warning" | "error";
}

/** Tracks the latest lifecycle phase and server status, and renders them. */
export class StatusTracker {
  private phase: ClientPhase = "starting";
  private server: StatusParams | undefined;
  private failure: string | undefined;
  private lastNotifiedError: string | undefined;

  /** Records a lifecycle change; a fresh start forgets the previous server status. */
  setPhase(phase: ClientPhase, failure?: string): void {
    this.phase = phase;
    if (phase === "starting" || phase === "restarting") {
      this.server = undefined;
      this.failure = undefined;
    }
    if (phase === "failed") this.failure = failure;
  }

  /**
   * Records a codellama/status notification. Returns the message to show the user when this is an error
   * not shown before (the same error repeated, e.g. on every request, is shown once).
   */
  onStatus(params: StatusParams): string | undefined {
    const state = normalizeState(params.state);
    this.server = { ...params, state };
    if (state !== "error") {
      this.lastNotifiedError = undefined;
      return undefined;
    }
    const message = params.message?.trim() || "The CodeLlama server reported an error.";
    if (message === this.lastNotifiedError) return undefined;
    this.lastNotifiedError = message;
    return message;
  }

  /** True when `message` is the error already shown from a status notification (the server may repeat it in window/showMessage). */
  isNotifiedError(message: string): boolean {
    return this.lastNotifiedError !== undefined && this.lastNotifiedError === message.trim();
  }

  /** The server's state as last reported, undefined before the first notification of this run. */
  get serverState(): ServerState | undefined {
    return this.server?.state;
  }

  view(): StatusView {
    switch (this.phase) {
      case "starting":
      case "restarting":
        if (this.server === undefined) {
          return { text: "$(sync~spin) CodeLlama", tooltip: this.phase === "starting" ? "Starting the CodeLlama server…" : "Restarting the CodeLlama server…", severity: "normal" };
        }
        return this.serverView(this.server);
      case "running":
        return this.server === undefined
          ? { text: "$(sync~spin) CodeLlama", tooltip: "The CodeLlama server is starting up.", severity: "normal" }
          : this.serverView(this.server);
      case "stopped":
        return { text: "$(circle-slash) CodeLlama", tooltip: "The CodeLlama server is stopped. Click for the log; run “CodeLlama: Restart Server” to start it.", severity: "warning" };
      case "failed":
        return { text: "$(error) CodeLlama", tooltip: `${this.failure ?? "The CodeLlama server stopped."} Click for the log.`, severity: "error" };
    }
  }

  private serverView(status: StatusParams): StatusView {
    const message = status.message?.trim();
    switch (status.state) {
      case "loading": {
        const percent = progressPercent(status.progress);
        return {
          text: `$(sync~spin) CodeLlama${percent === undefined ? "" : ` ${percent}%`}`,
          tooltip: message || "Loading the model…",
          severity: "normal",
        };
      }
      case "ready":
        return { text: "$(check) CodeLlama", tooltip: message || "Ready.", severity: "normal" };
      case "busy":
        return { text: "$(loading~spin) CodeLlama", tooltip: message || "Generating…", severity: "normal" };
      case "error":
        return { text: "$(error) CodeLlama", tooltip: `${message || "The server reported an error."} Click for the log.`, severity: "error" };
    }
  }
}

/** Rounds 0..1 progress to a whole percentage; undefined when absent or not a number. */
export function progressPercent(progress: number | undefined): number | undefined {
  if (typeof progress !== "number" || !Number.isFinite(progress)) return undefined;
  return Math.round(Math.min(1, Math.max(0, progress)) * 100);
}

/** Unknown states from a newer server read as busy rather than breaking the item. */
function normalizeState(state: string): ServerState {
  return state === "loading" || state === "ready" || state === "busy" || state === "error" ? state : "busy";
}
