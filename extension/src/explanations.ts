// Keeps the Explain runs streamed through codellama/explanation notifications and renders each as the
// markdown document the side view shows; pure, so the streaming logic is tested without VS Code.
import { ExplanationParams, LspRange } from "./protocol";

export interface Explanation {
  token: string;
  uri: string;
  range: LspRange;
  markdown: string;
  done: boolean;
  /** Increases with every update, so a late notification cannot overwrite a newer text. */
  updates: number;
}

export interface ExplanationUpdate {
  explanation: Explanation;
  /** The first notification of this run: the view should open. */
  isNew: boolean;
  /** The text changed: the view should refresh. */
  changed: boolean;
}

/** The Explain runs of this session, newest last; old runs are forgotten past `capacity`. */
export class ExplanationStore {
  private readonly runs = new Map<string, Explanation>();
  constructor(private readonly capacity = 20) {}

  /** Applies one notification. Notifications after a run's `done` are ignored (the final text stands). */
  apply(params: ExplanationParams): ExplanationUpdate {
    const existing = this.runs.get(params.token);
    if (existing === undefined) {
      const explanation: Explanation = { token: params.token, uri: params.uri, range: params.range, markdown: params.markdown ?? "", done: params.done === true, updates: 1 };
      this.runs.set(params.token, explanation);
      this.trim();
      return { explanation, isNew: true, changed: true };
    }
    if (existing.done) return { explanation: existing, isNew: false, changed: false };
    const markdown = params.markdown ?? existing.markdown;
    const changed = markdown !== existing.markdown || params.done === true;
    existing.markdown = markdown;
    existing.done = params.done === true;
    existing.updates++;
    return { explanation: existing, isNew: false, changed };
  }

  /**
   * Records the command's final result. It completes the newest run for that document and range that is still
   * open or already ended with this text (the usual case: the server streams, then answers). Only when the
   * server streamed nothing for it (an older server) does the result become a run of its own.
   */
  complete(uri: string, range: LspRange, markdown: string, fallbackToken: string): ExplanationUpdate {
    const match = [...this.runs.values()]
      .reverse()
      .find((run) => run.uri === uri && sameRange(run.range, range) && (!run.done || run.markdown.trim() === markdown.trim()));
    if (match?.done) return { explanation: match, isNew: false, changed: false };
    return this.apply({ token: match?.token ?? fallbackToken, uri, range, markdown, done: true });
  }

  /**
   * True when a message repeats a finished explanation: the server also sends it as window/showMessage for
   * clients without this view, and a notification holding the whole text would only duplicate it.
   */
  isEcho(message: string): boolean {
    const text = message.trim();
    return text !== "" && [...this.runs.values()].some((run) => run.done && run.markdown.trim() === text);
  }

  get(token: string): Explanation | undefined {
    return this.runs.get(token);
  }

  private trim(): void {
    while (this.runs.size > this.capacity) {
      const oldest = this.runs.keys().next().value as string;
      this.runs.delete(oldest);
    }
  }
}

/** The markdown shown for a run: a heading naming the code, the text so far, and a note while it is written. */
export function renderExplanation(explanation: Explanation, displayPath: string): string {
  const { start, end } = explanation.range;
  const lines = start.line === end.line || (end.line === start.line + 1 && end.character === 0) ? `line ${start.line + 1}` : `lines ${start.line + 1}–${end.character === 0 ? end.line : end.line + 1}`;
  const body = explanation.markdown.trim() === "" ? "_Thinking…_" : explanation.markdown;
  const footer = explanation.done ? "" : "\n\n---\n_CodeLlama is still writing…_";
  return `# Explanation of ${displayPath}, ${lines}\n\n${body}${footer}\n`;
}

function sameRange(a: LspRange, b: LspRange): boolean {
  return a.start.line === b.start.line && a.start.character === b.start.character && a.end.line === b.end.line && a.end.character === b.end.character;
}
