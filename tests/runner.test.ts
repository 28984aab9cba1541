import assert from "node:assert/strict";
import { formatProgress, runStudy } from "../src/studies/runner.ts";
import { PromptError } from "../src/errors.ts";

const square = (n: number) => Promise.resolve(n * n);
const id = (n: number) => `item-${n}`;

Deno.test("study: results are appended as they finish and a rerun resumes without recomputing", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  const calls: number[] = [];
  const work = (n: number) => {
    calls.push(n);
    if (n === 3) throw new Error("crash"); // a bug: stops the study
    return square(n);
  };
  await assert.rejects(() => runStudy([1, 2, 3, 4], id, work, { results: file }), /crash/);
  const lines = (await Deno.readTextFile(file)).trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.id), ["item-1", "item-2"]); // finished items survived
  calls.length = 0;
  const tracked = (n: number) => {
    calls.push(n);
    return square(n);
  };
  const run = await runStudy([1, 2, 3, 4], id, tracked, { results: file });
  assert.deepEqual(run.results.map((r) => r.result), [1, 4, 9, 16]);
  assert.equal(run.resumed, 2);
  assert.deepEqual(calls, [3, 4]); // items 1 and 2 came from the file
});

Deno.test("study: a line cut short by a crash is recomputed; a broken line mid-file is refused", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(file, '{"id":"item-1","ok":true,"result":1}\n{"id":"item-2","ok":tr');
  const run = await runStudy([1, 2], id, square, { results: file });
  assert.deepEqual(run.results.map((r) => r.result), [1, 4]);
  assert.equal(run.resumed, 1);
  const lines = (await Deno.readTextFile(file)).trim().split("\n");
  assert.equal(lines.length, 2);
  await Deno.writeTextFile(file, 'garbage\n{"id":"item-1","ok":true,"result":1}\n');
  await assert.rejects(() => runStudy([1], id, square, { results: file }), /not a JSON line/);
});

Deno.test("study: bad rows are reported with what was wrong and skipped, the others go on", async () => {
  const work = (n: number) => {
    if (n % 2 === 0) throw new PromptError(`word "x${n}" is not in the caption`);
    return square(n);
  };
  const run = await runStudy([1, 2, 3, 4, 5], id, work);
  assert.deepEqual(run.results.map((r) => r.id), ["item-1", "item-3", "item-5"]);
  assert.deepEqual(run.failures.map((f) => [f.id, f.kind]), [["item-2", "PromptError"], [
    "item-4",
    "PromptError",
  ]]);
  assert.match(run.failures[0].error, /not in the caption/);
});

Deno.test("study: shards partition the items; progress counts and rate", async () => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  const seen: string[][] = [];
  for (let index = 0; index < 3; index++) {
    const run = await runStudy(items, id, square, { shard: { index, count: 3 } });
    seen.push(run.results.map((r) => r.id));
  }
  assert.deepEqual(seen.flat().sort(), items.map(id).sort());
  assert.equal(new Set(seen.flat()).size, 10);
  const progress: string[] = [];
  await runStudy([1, 2], id, square, { onProgress: (p) => progress.push(formatProgress(p)) });
  assert.match(progress[1], /^2\/2 done \(0 resumed, 0 bad\)/);
  await assert.rejects(
    () => runStudy([1], id, square, { shard: { index: 3, count: 3 } }),
    /0 ≤ index < count/,
  );
  await assert.rejects(() => runStudy([1, 1], id, square), /occurs twice/);
});
