import assert from "node:assert/strict";
import { cocoItRow, formatCocoIt, parseCocoIt } from "../src/datasets/coco-it.ts";
import { DatasetError, PromptError } from "../src/errors.ts";

Deno.test("contexts remove the word at word boundaries only", () => {
  const row = cocoItRow("a.png", "A red bus near a reddish barn, red again", "red", "bus", 3);
  assert.equal(row.context, "A bus near a reddish barn, red again");
  assert.equal(row.image_id, 3);
  assert.throws(() => cocoItRow("a.png", "a reddish barn", "red", "barn"), PromptError);
});

Deno.test("JSON Lines round trip keeps commas and quotes; bad lines are named", () => {
  const rows = [
    cocoItRow("images/1.png", 'a "red", round circle', "circle", "circle", 1),
    cocoItRow("images/2.png", "a blue square", "blue", "square"),
  ];
  const text = formatCocoIt(rows);
  assert.equal(text.split("\n").length, 3);
  assert.deepEqual(parseCocoIt(text + "\n\n"), rows);
  assert.throws(() => parseCocoIt(text + "{oops\n"), /line 3 is not valid JSON/);
  assert.throws(
    () => parseCocoIt('{"image":"a.png","caption":"x","word":"x","category":"c"}'),
    (e) => e instanceof DatasetError && /"context" is missing; expected a string/.test(e.message),
  );
});
