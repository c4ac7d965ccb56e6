// Unit tests for marking server edits for review in the refactor preview.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { countTextEdits, ReviewAnnotationId, reviewLabel, withReview } from "../editReview";

const range = { start: { line: 1, character: 0 }, end: { line: 1, character: 5 } };

test("a changes map becomes annotated document changes needing confirmation", () => {
  const reviewed = withReview({ changes: { "file:///a.py": [{ range, newText: "fixed" }] } }, "CodeLlama: Fix");
  assert.deepEqual(reviewed.documentChanges, [{ textDocument: { uri: "file:///a.py", version: null }, edits: [{ range, newText: "fixed", annotationId: ReviewAnnotationId }] }]);
  assert.deepEqual(reviewed.changeAnnotations?.[ReviewAnnotationId]?.needsConfirmation, true);
  assert.equal(reviewed.changeAnnotations?.[ReviewAnnotationId]?.label, "CodeLlama: Fix");
});

test("document changes keep their versions; server annotations gain needsConfirmation", () => {
  const reviewed = withReview(
    {
      documentChanges: [
        { textDocument: { uri: "file:///a.py", version: 7 }, edits: [{ range, newText: "x", annotationId: "docs" }, { range, newText: "y" }] },
        { kind: "create", uri: "file:///test_a.py" },
      ],
      changeAnnotations: { docs: { label: "Docstring" } },
    },
    "CodeLlama: Generate tests",
  );
  const [textEdit, create] = reviewed.documentChanges ?? [];
  assert.deepEqual(textEdit, { textDocument: { uri: "file:///a.py", version: 7 }, edits: [{ range, newText: "x", annotationId: "docs" }, { range, newText: "y", annotationId: ReviewAnnotationId }] });
  assert.equal((create as { annotationId?: string }).annotationId, ReviewAnnotationId);
  assert.deepEqual(reviewed.changeAnnotations?.docs, { label: "Docstring", needsConfirmation: true });
});

test("the input edit is not modified", () => {
  const edit = { changes: { "file:///a.py": [{ range, newText: "z" }] } };
  withReview(edit, "l");
  assert.deepEqual(edit, { changes: { "file:///a.py": [{ range, newText: "z" }] } });
});

test("text edits are counted in both shapes", () => {
  assert.equal(countTextEdits({ changes: { a: [{ range, newText: "" }, { range, newText: "" }], b: [{ range, newText: "" }] } }), 3);
  assert.equal(countTextEdits({ documentChanges: [{ kind: "delete", uri: "x" }] }), 0);
  assert.equal(countTextEdits({}), 0);
});

test("review labels name CodeLlama once", () => {
  assert.equal(reviewLabel("Fix this"), "CodeLlama: Fix this");
  assert.equal(reviewLabel("CodeLlama: Fix this"), "CodeLlama: Fix this");
  assert.equal(reviewLabel(undefined), "CodeLlama: proposed edit");
});
