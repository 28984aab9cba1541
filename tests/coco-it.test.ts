import assert from "node:assert/strict";
import { cocoItRow, formatCocoIt, parseCocoIt } from "../src/datasets/coco-it.ts";
import { DatasetError, PromptError } from "../src/errors.ts";

Deno.test("contexts remove every occurrence of the object at word boundaries only", () => {
  const row = cocoItRow("a.png", "A red bus near a reddish barn, red again", "red", "bus", 3);
  assert.equal(row.context, "A bus near a reddish barn, again");
  // a phrase object, twice; "bed" inside "bedroom" stays (the reference's substring replace cuts it)
  const table = cocoItRow(
    "a.png",
    "A dining table and a Dining Table in a bedroom",
    "dining table",
    "dining table",
  );
  assert.equal(table.context, "A and a in a bedroom");
  assert.equal(cocoItRow("b.png", "a bed in a bedroom", "bed", "bed").context, "a in a bedroom");
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

Deno.test("phrases: words, occurrences and all-occurrence removal at word boundaries", async () => {
  const { phraseOccurrences, phraseWords, removePhrase } = await import("../src/text/prompt.ts");
  assert.deepEqual(phraseWords("Teddy  Bear"), ["teddy", "bear"]);
  assert.throws(() => phraseWords("dining-table"), /words separated by spaces/);
  assert.throws(() => phraseWords("  "), /expected a word or a phrase/);
  assert.deepEqual(phraseOccurrences("a teddy bear, a teddy, a bear, a Teddy Bear", "teddy bear"), [
    [1, 2],
    [8, 9],
  ]);
  assert.deepEqual(phraseOccurrences("cell cell phone", "cell phone"), [[1, 2]]);
  assert.equal(removePhrase("a dog, two dogs and a dog.", "dog"), "a, two dogs and a.");
  assert.equal(removePhrase("a dog and a dog", "dog", { placeholder: "_" }), "a _ and a _");
  assert.throws(() => removePhrase("a hotdog", "dog"), PromptError);
});

Deno.test("the reference's COCO-IT.csv: 6,927 rows, 584 phrase objects, 37 contexts the substring replace broke", async () => {
  const { parseCocoItCsv } = await import("../src/datasets/coco-it.ts");
  const { phraseOccurrences, phraseWords } = await import("../src/text/prompt.ts");
  const { rows, changed } = parseCocoItCsv(await Deno.readTextFile("fixtures/coco/COCO-IT.csv"));
  assert.equal(rows.length, 6927);
  assert.equal(rows.filter((r) => phraseWords(r.word).length > 1).length, 584);
  // 110 captions name the object twice as the reference sees it (case-sensitively), 111 as CLIP does
  assert.equal(rows.filter((r) => phraseOccurrences(r.caption, r.word).length > 1).length, 111);
  assert.equal(changed.filter((c) => c.why === "substring").length, 37);
  assert.equal(changed.filter((c) => c.why === "case").length, 1);
  const bedroom = changed.find((c) => c.caption.startsWith("A bedroom with a large bed"))!;
  assert.equal(
    bedroom.reference.replace(/\s+/g, " "),
    "A room with a large sitting next to a black dresser.",
  );
  assert.equal(bedroom.context, "A bedroom with a large sitting next to a black dresser.");
  const first = rows[0];
  assert.deepEqual(first, {
    image: "000000397133.jpg",
    caption: "A person standing by a stove in a kitchen.",
    word: "person",
    category: "person",
    context: "A standing by a stove in a kitchen.",
    image_id: 397133,
  });
  assert.ok(rows.some((r) => r.word === "dining table" && r.category === "dining table"));
  assert.throws(() => parseCocoItCsv("a,b\n1,2\n"), /expected the reference's columns/);
});

Deno.test("the reference's COCO100-IT.csv (the intervention rows, one more column) reads too", async () => {
  const { parseCocoItCsv } = await import("../src/datasets/coco-it.ts");
  // its header and first data row, verbatim (kxh001/Info-Decomp datasets/coco/COCO100-IT.csv)
  const csv = "Image ID,Label,correct_obj+context,context,correct_obj,context_\n" +
    "379453,airplane,The bottom view of an airplane flying in the air.," +
    "The bottom view of an  flying in the air.,airplane,The bottom view of an _ flying in the air.\n";
  const { rows, changed } = parseCocoItCsv(csv, "COCO100-IT.csv");
  assert.equal(rows.length, 1);
  assert.equal(rows[0].image, "000000379453.jpg");
  assert.equal(rows[0].word, "airplane");
  assert.equal(rows[0].context, "The bottom view of an flying in the air.");
  assert.equal(changed.length, 0);
});
