// Unit tests for marking server edits for review in the refactor preview.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { applyTextEdits, countTextEdits, ReviewAnnotationId, reviewLabel, singleDocumentEdits, withReview } from "../editReview";

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

const at = (line: number, character: number) => ({ line, character });

test("single-document edits are found in both shapes; several documents or file operations are not", () => {
  const edits = [{ range, newText: "x" }];
  assert.deepEqual(singleDocumentEdits({ changes: { "file:///a.py": edits } }), { uri: "file:///a.py", edits });
  assert.deepEqual(singleDocumentEdits({ documentChanges: [{ textDocument: { uri: "file:///a.py", version: 3 }, edits }] }), { uri: "file:///a.py", edits });
  assert.equal(singleDocumentEdits({ changes: { "file:///a.py": edits, "file:///b.py": edits } }), undefined);
  assert.equal(singleDocumentEdits({ documentChanges: [{ kind: "create", uri: "file:///t.py" }] }), undefined);
});

test("text edits apply in any order, by line and UTF-16 character", () => {
  const text = "def f(x):\n    return x\n";
  const edits = [
    { range: { start: at(1, 11), end: at(1, 12) }, newText: "x * 2" },
    { range: { start: at(0, 0), end: at(0, 0) }, newText: "# doubles\n" },
  ];
  assert.equal(applyTextEdits(text, edits), "# doubles\ndef f(x):\n    return x * 2\n");
});

test("characters past a line's end clamp to it, also before CRLF, and emoji count as two units", () => {
  assert.equal(applyTextEdits("ab\r\ncd", [{ range: { start: at(0, 99), end: at(0, 99) }, newText: "!" }]), "ab!\r\ncd");
  assert.equal(applyTextEdits("😀x", [{ range: { start: at(0, 2), end: at(0, 3) }, newText: "y" }]), "😀y");
  assert.equal(applyTextEdits("a\n", [{ range: { start: at(5, 0), end: at(5, 0) }, newText: "tail" }]), "a\ntail");
});

test("overlapping edits are refused with the offsets named", () => {
  assert.throws(() => applyTextEdits("abcdef", [{ range: { start: at(0, 0), end: at(0, 3) }, newText: "" }, { range: { start: at(0, 2), end: at(0, 4) }, newText: "" }]), /Overlapping edits at offsets 0-3 and 2-4/);
});
