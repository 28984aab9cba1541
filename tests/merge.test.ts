// Merging shard files without a model: same run or refused, nothing dropped, gaps reported.
import assert from "node:assert/strict";
import { ResultsFileError } from "../src/errors.ts";
import { mergeResults } from "../src/studies/merge.ts";
import { runStudy, type StudyDescription } from "../src/studies/runner.ts";
import { readResults } from "../src/studies/results-file.ts";

const description: StudyDescription = {
  study: "squares",
  settings: { samples: 4 },
  model: { name: "m", backend: "test", sha256: "c".repeat(64) },
};
const items = Array.from({ length: 10 }, (_, i) => i);
const id = (n: number) => `n${n}`;

async function shards(dir: string, count: number, work = (n: number) => Promise.resolve(n * n)) {
  const paths: string[] = [];
  for (let index = 0; index < count; index++) {
    const results = `${dir}/shard-${index}.jsonl`;
    await runStudy(items, id, work, { results, shard: { index, count }, description });
    paths.push(results);
  }
  return paths;
}

Deno.test("merge: every row of every shard, one header, and the merged file resumes a full run", async () => {
  const dir = await Deno.makeTempDir();
  const paths = await shards(dir, 3);
  const report = await mergeResults(paths, `${dir}/all.jsonl`);
  assert.equal(report.rows, 10);
  assert.equal(report.complete, true);
  assert.deepEqual(report.missingShards, []);
  const merged = await readResults<number>(`${dir}/all.jsonl`);
  assert.equal(merged.header?.study, "squares");
  assert.equal(merged.header?.shard, undefined);
  assert.equal(merged.header?.items, 10);
  assert.deepEqual(merged.header?.mergedFrom, paths);
  assert.deepEqual([...merged.records.keys()].sort(), items.map(id).sort());
  // the merged file is a results file of the whole study: a full run resumes every row from it
  const run = await runStudy(items, id, () => Promise.reject(new Error("recomputed")), {
    results: `${dir}/all.jsonl`,
    description,
  });
  assert.equal(run.resumed, 10);
  assert.deepEqual(run.results.map((r) => r.result), items.map((n) => n * n));
});

Deno.test("merge: a missing or unfinished shard is reported, the rest still merged", async () => {
  const dir = await Deno.makeTempDir();
  const paths = await shards(dir, 4);
  // shard 2's file lost its last two rows (its job is still running)
  const lines = (await Deno.readTextFile(paths[2])).trim().split("\n");
  await Deno.writeTextFile(paths[2], lines.slice(0, -1).join("\n") + "\n");
  const report = await mergeResults([paths[0], paths[2], paths[3]], `${dir}/all.jsonl`);
  assert.deepEqual(report.missingShards, [1]);
  assert.deepEqual(report.incompleteShards, [{ index: 2, items: 1, expected: 2 }]);
  assert.equal(report.complete, false);
  assert.equal(report.rows, 10 - 3 - 1);
});

Deno.test("merge: shards of different runs, or two files of one shard, are refused", async () => {
  const dir = await Deno.makeTempDir();
  const paths = await shards(dir, 2);
  const other = `${dir}/other.jsonl`;
  await runStudy(items, id, (n) => Promise.resolve(n), {
    results: other,
    shard: { index: 1, count: 2 },
    description: { ...description, settings: { samples: 8 } },
  });
  await assert.rejects(
    () => mergeResults([paths[0], other], `${dir}/a.jsonl`),
    (e: Error) =>
      e instanceof ResultsFileError &&
      /samples is 8 in .*other\.jsonl, 4 in .*shard-0\.jsonl/.test(e.message),
  );
  await assert.rejects(
    () => mergeResults([paths[0], paths[0]], `${dir}/b.jsonl`),
    /both hold shard 0/,
  );
  const three = `${dir}/three.jsonl`;
  await runStudy(items, id, (n) => Promise.resolve(n * n), {
    results: three,
    shard: { index: 1, count: 3 },
    description,
  });
  await assert.rejects(
    () => mergeResults([paths[0], three], `${dir}/c.jsonl`),
    /of 2; expected the shards of one split/,
  );
  await Deno.writeTextFile(`${dir}/bare.jsonl`, '{"id":"n1","ok":true,"result":1}\n');
  await assert.rejects(
    () => mergeResults([`${dir}/bare.jsonl`], `${dir}/d.jsonl`),
    /no infodiff header/,
  );
  await assert.rejects(() => mergeResults(paths, paths[0]), /one of the inputs/);
  await Deno.writeTextFile(`${dir}/exists.jsonl`, "");
  await assert.rejects(() => mergeResults(paths, `${dir}/exists.jsonl`), /exists/);
});

Deno.test("merge: duplicates are kept once, a good row wins over a failure, conflicts are refused", async () => {
  const dir = await Deno.makeTempDir();
  const paths = await shards(dir, 2);
  // a copy of shard 0 as "shard 1" would be refused; instead a rerun of the whole study (1/1)
  // is not mixed in either: its shard count differs
  const rows = (await Deno.readTextFile(paths[1])).trim().split("\n");
  const header = JSON.parse(rows[0]);
  // shard 1's file also holds a stray copy of one of shard 0's rows, and a failure later fixed
  const stray = (await Deno.readTextFile(paths[0])).trim().split("\n")[1];
  const failedThenFixed = [
    JSON.stringify({ id: "n9", ok: false, error: "word missing", kind: "PromptError" }),
  ];
  await Deno.writeTextFile(
    paths[1],
    [JSON.stringify(header), ...failedThenFixed, ...rows.slice(1), stray].join("\n") + "\n",
  );
  const report = await mergeResults(paths, `${dir}/all.jsonl`);
  assert.equal(report.rows, 10);
  assert.equal(report.failures, 0);
  assert.deepEqual(report.duplicates, [JSON.parse(stray).id]);
  // two different good results for one item
  const changed = { ...JSON.parse(stray), result: -1 };
  await Deno.writeTextFile(
    paths[1],
    [JSON.stringify(header), ...rows.slice(1), JSON.stringify(changed)].join("\n") + "\n",
  );
  await assert.rejects(() => mergeResults(paths, `${dir}/conflict.jsonl`), /two different results/);
});
