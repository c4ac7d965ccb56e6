// Unit tests for collecting streamed Explain notifications and rendering the side view's markdown.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ExplanationStore, renderExplanation } from "../explanations";

const range = { start: { line: 2, character: 0 }, end: { line: 9, character: 0 } };
const note = (token: string, markdown: string, done = false) => ({ token, uri: "file:///p/a.py", range, markdown, done });

test("the first notification of a run opens, later ones refresh with the whole text", () => {
  const store = new ExplanationStore();
  const first = store.apply(note("t1", "This"));
  assert.equal(first.isNew, true);
  const second = store.apply(note("t1", "This function"));
  assert.deepEqual([second.isNew, second.changed, second.explanation.markdown], [false, true, "This function"]);
  assert.equal(store.apply(note("t1", "This function")).changed, false);
});

test("after done a late notification does not overwrite the final text", () => {
  const store = new ExplanationStore();
  store.apply(note("t1", "Final text.", true));
  const late = store.apply(note("t1", "Final"));
  assert.equal(late.changed, false);
  assert.equal(store.get("t1")?.markdown, "Final text.");
});

test("the command's result completes the open run of the same range", () => {
  const store = new ExplanationStore();
  store.apply(note("t1", "Adds two"));
  const update = store.complete("file:///p/a.py", range, "Adds two numbers.", "fallback");
  assert.equal(update.explanation.token, "t1");
  assert.equal(update.explanation.done, true);
  assert.equal(update.explanation.markdown, "Adds two numbers.");
});

test("a result that repeats an already finished run changes nothing and opens nothing", () => {
  const store = new ExplanationStore();
  store.apply(note("t1", "Adds two numbers.", true));
  const update = store.complete("file:///p/a.py", range, "Adds two numbers.", "fallback");
  assert.deepEqual([update.isNew, update.changed, update.explanation.token], [false, false, "t1"]);
  assert.equal(store.get("fallback"), undefined);
});

test("a result without any streamed notification creates its own run", () => {
  const store = new ExplanationStore();
  const update = store.complete("file:///p/a.py", range, "Adds two numbers.", "fallback");
  assert.deepEqual([update.isNew, update.explanation.token, update.explanation.done], [true, "fallback", true]);
});

test("the store forgets the oldest runs past its capacity", () => {
  const store = new ExplanationStore(2);
  store.apply(note("a", "1"));
  store.apply(note("b", "2"));
  store.apply(note("c", "3"));
  assert.equal(store.get("a"), undefined);
  assert.ok(store.get("c"));
});

test("rendering names the code, marks a run still being written, and handles an empty start", () => {
  const store = new ExplanationStore();
  const writing = store.apply(note("t", "")).explanation;
  const text = renderExplanation(writing, "src/a.py");
  assert.match(text, /^# Explanation of src\/a\.py, lines 3–9/);
  assert.match(text, /Thinking/);
  assert.match(text, /still writing/);
  const done = store.apply(note("t", "It adds.", true)).explanation;
  assert.doesNotMatch(renderExplanation(done, "src/a.py"), /still writing/);
  const oneLine = { ...done, range: { start: { line: 4, character: 2 }, end: { line: 4, character: 9 } } };
  assert.match(renderExplanation(oneLine, "a.py"), /, line 5\n/);
});

test("a showMessage repeating a finished explanation is recognised as an echo", () => {
  const store = new ExplanationStore();
  store.apply(note("t", "It adds."));
  assert.equal(store.isEcho("It adds."), false);
  store.apply(note("t", "It adds.", true));
  assert.equal(store.isEcho("It adds.\n"), true);
  assert.equal(store.isEcho("Model loaded."), false);
  assert.equal(store.isEcho(""), false);
});
