// The study commands end to end on shapes-tiny and files of an exported shapes world: results
// files, refusal of a mismatched resume, shards merged from the CLI, and the report.
import assert from "node:assert/strict";
import { main } from "../src/cli/main.ts";
import { ResultsFileError } from "../src/errors.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { readResults } from "../src/studies/results-file.ts";

const world = shapesWorld({ seed: 4, count: 4, split: "test" });
const data = await Deno.makeTempDir();
await exportShapesDataset(world, data);
const MODEL = ["--model", "fixtures/models/shapes-tiny", "--device", "cpu", "--quiet"];

async function run(args: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(args, (line) => lines.push(line));
  return { code, text: lines.join("\n") };
}

Deno.test("cli localize: a results file with its header, a refused mismatched resume, a report", async () => {
  const out = await Deno.makeTempDir();
  const args = [
    "localize",
    ...MODEL,
    "--coco-it",
    `${data}/coco_it.jsonl`,
    "--instances",
    `${data}/instances.json`,
    "--methods",
    "information,whole-image",
    "--samples",
    "2",
    "--results",
    `${out}/loc.jsonl`,
  ];
  const first = await run([...args, "--report", `${out}/report`]);
  assert.equal(first.code, 0, first.text);
  assert.match(first.text, /localization on shapes-tiny: \d+ rows/);
  const file = await readResults(`${out}/loc.jsonl`);
  assert.equal(file.header?.study, "localization");
  assert.equal(file.header?.model?.name, "shapes-tiny");
  assert.ok(file.records.size > 0);
  assert.ok((await Deno.stat(`${out}/report/report.html`)).isFile);
  const again = await run(args);
  assert.equal(again.code, 0);
  assert.match(again.text, /\d+ resumed/);
  await assert.rejects(
    () => run([...args.slice(0, -4), "--samples", "3", "--results", `${out}/loc.jsonl`]),
    ResultsFileError,
  );
});

Deno.test("cli localize: two shards from the CLI, merged into one complete file", async () => {
  const out = await Deno.makeTempDir();
  const base = [
    "localize",
    ...MODEL,
    "--coco-it",
    `${data}/coco_it.jsonl`,
    "--instances",
    `${data}/instances.json`,
    "--methods",
    "information",
    "--samples",
    "2",
  ];
  for (const index of [0, 1]) {
    const { code, text } = await run([
      ...base,
      "--shard",
      `${index}/2`,
      "--results",
      `${out}/s${index}.jsonl`,
    ]);
    assert.equal(code, 0, text);
  }
  const merged = await run([
    "merge",
    `${out}/s0.jsonl`,
    `${out}/s1.jsonl`,
    "-o",
    `${out}/all.jsonl`,
  ]);
  assert.equal(merged.code, 0, merged.text);
  assert.match(merged.text, /complete$/);
  const whole = await run([...base, "--results", `${out}/all.jsonl`]);
  assert.equal(whole.code, 0, whole.text);
  const rows = Number(/(\d+) rows/.exec(whole.text)![1]);
  assert.match(whole.text, new RegExp(`${rows} resumed`));
});

Deno.test("cli relations, intervene and pid-study on the exported world", async () => {
  const out = await Deno.makeTempDir();
  const relations = await run([
    "relations",
    ...MODEL,
    "--aro",
    `${data}/aro_relation.json`,
    "--samples",
    "2",
    "--estimator",
    "standard",
    "--results",
    `${out}/rel.jsonl`,
  ]);
  assert.equal(relations.code, 0, relations.text);
  assert.match(relations.text, /relations on shapes-tiny: \d+ items/);
  const scene = world.scenes[0];
  const image = `${data}/images/${scene.id}.png`;
  await Deno.stat(image);
  await Deno.writeTextFile(
    `${out}/items.json`,
    JSON.stringify([
      { image, caption: scene.caption, word: scene.caption.split(" ")[1] },
    ]),
  );
  const intervene = await run([
    "intervene",
    ...MODEL,
    "--items",
    `${out}/items.json`,
    "--steps",
    "2",
    "--samples",
    "2",
    "--results",
    `${out}/edit.jsonl`,
  ]);
  assert.equal(intervene.code, 0, intervene.text);
  assert.match(intervene.text, /prompt intervention on shapes-tiny: 1\/1 items/);
  const [, colour, shape] = scene.caption.split(" ");
  await Deno.writeTextFile(
    `${out}/rows.json`,
    JSON.stringify([
      { image, prompt: scene.caption, wordA: colour, wordB: shape },
    ]),
  );
  const pid = await run([
    "pid-study",
    ...MODEL,
    "--rows",
    `${out}/rows.json`,
    "--samples",
    "2",
    "--results",
    `${out}/pid.jsonl`,
  ]);
  assert.equal(pid.code, 0, pid.text);
  assert.match(pid.text, /PID study/);
  await assert.rejects(
    () => run(["relations", ...MODEL, "--results", `${out}/x.jsonl`]),
    /needs --aro/,
  );
  await assert.rejects(
    () => run(["localize", ...MODEL, "--coco-it", "t", "--instances", "i"]),
    /needs --results/,
  );
  await assert.rejects(
    () =>
      run([
        "localize",
        ...MODEL,
        "--coco-it",
        "t",
        "--instances",
        "i",
        "--results",
        "r",
        "--methods",
        "magic",
      ]),
    /unknown method "magic"/,
  );
});

Deno.test("cli studies: --rows-in-flight is checked before the model loads", async () => {
  for (const bad of ["0", "1.5"]) {
    await assert.rejects(
      () =>
        main([
          "relations",
          "--model",
          "/no/model",
          "--aro",
          "/no/aro.json",
          "--results",
          "/tmp/never.jsonl",
          "--rows-in-flight",
          bad,
        ], () => {}),
      new RegExp(`--rows-in-flight must be a positive integer, got ${bad}`),
    );
  }
});

Deno.test("cli calibrate: writes a profile that loadModel reads and the estimates then use", async () => {
  const out = await Deno.makeTempDir();
  const rows = world.scenes.slice(0, 2).map((scene) => ({
    image: `${data}/images/${scene.id}.png`,
    prompt: scene.caption,
  }));
  await Deno.writeTextFile(`${out}/rows.json`, JSON.stringify(rows));
  const file = `${out}/profile.json`;
  const result = await run([
    "calibrate",
    ...MODEL,
    "--rows",
    `${out}/rows.json`,
    "--samples",
    "20",
    "--bins",
    "8",
    "--out",
    file,
  ]);
  assert.equal(result.code, 0, result.text);
  assert.match(result.text, /wrote .*profile\.json: 8 bins over α ∈ \[-5\.36, 7\.07\]/);
  const { loadModel } = await import("../src/query/load-model.ts");
  const model = await loadModel("fixtures/models/shapes-tiny", { device: "cpu", profile: file });
  try {
    assert.equal(model.logSnrProfile?.mass.length, 8);
    assert.equal(model.logSnrProfile?.calibration.rows, 2);
    // one profile per informative word, each a word of the rows' captions
    const words = Object.keys(model.logSnrProfile?.words ?? {});
    assert.match(result.text, new RegExp(`with profiles of ${words.length} words`));
    const captions = new Set(rows.flatMap((r) => r.prompt.toLowerCase().split(/[^a-z]+/)));
    assert.ok(words.length > 0 && words.every((w) => captions.has(w)), words.join());
  } finally {
    await model.dispose();
  }
  // a bad row is named
  await Deno.writeTextFile(`${out}/bad.json`, JSON.stringify([{ image: rows[0].image }]));
  await assert.rejects(
    () => run(["calibrate", ...MODEL, "--rows", `${out}/bad.json`, "--out", file]),
    /every row needs "image" \(a path\) and "prompt"/,
  );
});
