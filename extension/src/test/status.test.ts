// Unit tests for the status bar's state machine.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { progressPercent, StatusTracker } from "../status";

test("before the server reports, the item says it is starting", () => {
  const tracker = new StatusTracker();
  assert.match(tracker.view().text, /sync~spin/);
  assert.match(tracker.view().tooltip, /Starting/);
});

test("loading shows the progress as a percentage and the server's message", () => {
  const tracker = new StatusTracker();
  tracker.setPhase("running");
  tracker.onStatus({ state: "loading", message: "Loading layer 12/48", progress: 0.256 });
  assert.equal(tracker.view().text, "$(sync~spin) CodeLlama 26%");
  assert.equal(tracker.view().tooltip, "Loading layer 12/48");
  assert.equal(tracker.view().severity, "normal");
});

test("ready and busy have their own icons", () => {
  const tracker = new StatusTracker();
  tracker.setPhase("running");
  tracker.onStatus({ state: "ready" });
  assert.equal(tracker.view().text, "$(check) CodeLlama");
  tracker.onStatus({ state: "busy", message: "Completing main.py" });
  assert.equal(tracker.view().text, "$(loading~spin) CodeLlama");
  assert.equal(tracker.view().tooltip, "Completing main.py");
});

test("an error is shown in error colour and notified once until the state changes", () => {
  const tracker = new StatusTracker();
  tracker.setPhase("running");
  assert.equal(tracker.onStatus({ state: "error", message: "Model folder /m not found" }), "Model folder /m not found");
  assert.equal(tracker.view().severity, "error");
  assert.match(tracker.view().tooltip, /Click for the log/);
  assert.equal(tracker.onStatus({ state: "error", message: "Model folder /m not found" }), undefined);
  tracker.onStatus({ state: "ready" });
  assert.equal(tracker.onStatus({ state: "error", message: "Model folder /m not found" }), "Model folder /m not found");
});

test("an error without a message still gets a sentence", () => {
  const tracker = new StatusTracker();
  assert.match(tracker.onStatus({ state: "error" }) ?? "", /error/);
});

test("a restart forgets the previous server status", () => {
  const tracker = new StatusTracker();
  tracker.setPhase("running");
  tracker.onStatus({ state: "ready" });
  tracker.setPhase("restarting");
  assert.equal(tracker.serverState, undefined);
  assert.match(tracker.view().tooltip, /Restarting/);
});

test("failed and stopped phases override the last server status", () => {
  const tracker = new StatusTracker();
  tracker.setPhase("running");
  tracker.onStatus({ state: "ready" });
  tracker.setPhase("failed", "CodeLlama: dotnet was not found.");
  assert.equal(tracker.view().severity, "error");
  assert.match(tracker.view().tooltip, /dotnet was not found/);
  tracker.setPhase("stopped");
  assert.equal(tracker.view().severity, "warning");
});

test("an unknown state from a newer server reads as busy", () => {
  const tracker = new StatusTracker();
  tracker.setPhase("running");
  tracker.onStatus({ state: "warming" as never });
  assert.equal(tracker.serverState, "busy");
});

test("progress is clamped and rounded; absent progress gives no percentage", () => {
  assert.equal(progressPercent(1.7), 100);
  assert.equal(progressPercent(-0.2), 0);
  assert.equal(progressPercent(0.499), 50);
  assert.equal(progressPercent(undefined), undefined);
  assert.equal(progressPercent(Number.NaN), undefined);
});

test("a repeated error in window/showMessage is recognised as already notified", () => {
  const tracker = new StatusTracker();
  assert.equal(tracker.isNotifiedError("No model configured"), false);
  tracker.onStatus({ state: "error", message: "No model configured" });
  assert.equal(tracker.isNotifiedError("No model configured\n"), true);
  assert.equal(tracker.isNotifiedError("Something else"), false);
});
