// Unit tests for shaping inline completion items so VS Code's partial accept works on them.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { normalizeInlineItem, normalizeInlineItems, snippetToPlainText } from "../inlineItems";

const at = (line: number, character: number) => ({ line, character });

test("an item without a range gets an empty range at the cursor", () => {
  assert.deepEqual(normalizeInlineItem({ insertText: "return a + b;" }, at(3, 4), "    "), { insertText: "return a + b;", range: { start: at(3, 4), end: at(3, 4) } });
});

test("a range that starts before the cursor must match what was typed", () => {
  const line = "    ret";
  const item = { insertText: "return a + b;", range: { start: at(0, 4), end: at(0, 7) } };
  assert.deepEqual(normalizeInlineItem(item, at(0, 7), line), { insertText: "return a + b;", range: item.range });
  assert.equal(normalizeInlineItem({ insertText: "yield a", range: item.range }, at(0, 7), line), undefined);
});

test("ranges off the cursor's line or after the cursor are dropped", () => {
  assert.equal(normalizeInlineItem({ insertText: "x", range: { start: at(1, 0), end: at(1, 0) } }, at(0, 0), ""), undefined);
  assert.equal(normalizeInlineItem({ insertText: "x", range: { start: at(0, 3), end: at(0, 3) } }, at(0, 1), "abcd"), undefined);
  assert.equal(normalizeInlineItem({ insertText: "x", range: { start: at(0, 0), end: at(0, 0) } }, at(0, 1), "abcd"), undefined);
});

test("items that add nothing are dropped", () => {
  assert.equal(normalizeInlineItem({ insertText: "" }, at(0, 0), ""), undefined);
  assert.equal(normalizeInlineItem({ insertText: "foo", range: { start: at(0, 0), end: at(0, 3) } }, at(0, 3), "foo"), undefined);
  assert.equal(normalizeInlineItem({ insertText: "foo()", range: { start: at(0, 0), end: at(0, 5) } }, at(0, 3), "foo()"), undefined);
});

test("snippet items become plain text", () => {
  assert.deepEqual(normalizeInlineItem({ insertText: { kind: "snippet", value: "print(${1:value})$0" } }, at(0, 0), ""), { insertText: "print(value)", range: { start: at(0, 0), end: at(0, 0) } });
});

test("snippet flattening keeps defaults and choices and unescapes", () => {
  assert.equal(snippetToPlainText("for ${1:i} in ${2|range,items|}:$0"), "for i in range:");
  assert.equal(snippetToPlainText("a\\$b \\} ${1:x${2:y}z}"), "a$b } xyz");
  assert.equal(snippetToPlainText("$TM_FILENAME costs $5"), " costs ");
  assert.equal(snippetToPlainText("price: $"), "price: $");
});

test("lists drop duplicates and unusable items but keep order", () => {
  const items = [{ insertText: "b()" }, { insertText: "a()" }, { insertText: "b()" }, { insertText: "" }];
  assert.deepEqual(normalizeInlineItems(items, at(0, 0), "").map((i) => i.insertText), ["b()", "a()"]);
});
