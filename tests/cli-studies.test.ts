// The study commands end to end on shapes-tiny and files of an exported shapes world: results
// files, refusal of a mismatched resume, shards merged from the CLI, and the report.
import assert from "node:assert/strict";
import { main } from "../src/cli/main.ts";
import { UsageError } from "../src/cli/command.ts";
import { InvalidArgumentError, ResultsFileError } from "../src/errors.ts";
import { loadModel } from "../src/query/load-model.ts";
import { localizationStudy } from "../src/studies/localization.ts";
import type { LocalizationRecord } from "../src/studies/localization-result.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { readResults } from "../src/studies/results-file.ts";
import { setWarningHandler } from "../src/warnings.ts";

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

Deno.test("cli localize --concepts: tiny FLUX.1 streams the words as the study does; refused without concept-attention, for bad words, on SD 3 and by the other studies", async () => {
  const out = await Deno.makeTempDir();
  await exportShapesDataset(shapesWorld({ seed: 4, count: 1, split: "test" }), `${out}/data`);
  const dataset = { table: `${out}/data/coco_it.jsonl`, instances: `${out}/data/instances.json` };
  const args = (model: string, results: string) => [
    "localize",
    "--model",
    `fixtures/models/${model}`,
    "--device",
    "cpu",
    "--quiet",
    "--coco-it",
    dataset.table,
    "--instances",
    dataset.instances,
    "--methods",
    "concept-attention",
    "--attention-draws",
    "study",
    "--samples",
    "2",
    "--results",
    results,
  ];
  const concepts = ["background", "grass"];
  // tiny FLUX.1's calibration rows find no information (warned once per cache); nothing else warns
  const warnings: string[] = [];
  const previous = setWarningHandler((m) => warnings.push(m));
  try {
    await runs();
  } finally {
    setWarningHandler(previous);
  }
  assert.ok(warnings.every((m) => /calibration rows' contrasts/.test(m)), warnings.join("\n"));

  /** The CLI with the words, the library with them (the known truth), the CLI without them. */
  async function runs() {
    const cli = await run([
      ...args("tiny-flux", `${out}/cli.jsonl`),
      "--concepts",
      "background, grass",
    ]);
    assert.equal(cli.code, 0, cli.text);
    const file = await readResults<LocalizationRecord>(`${out}/cli.jsonl`);
    assert.deepEqual(file.header?.settings?.concepts, concepts);
    // the known truth: the study given the same words through the library, row by row
    const model = await loadModel("fixtures/models/tiny-flux", { device: "cpu" });
    let library;
    try {
      library = await localizationStudy(model, dataset, {
        methods: ["concept-attention"],
        concepts,
        attentionDraws: "study",
        samples: 2,
        results: `${out}/library.jsonl`,
      });
    } finally {
      await model.dispose();
    }
    const ious = (id: string) => {
      const record = file.records.get(id);
      assert.ok(record?.ok, id);
      return record.result.ious["concept-attention"];
    };
    assert.ok(library.rows.length > 0 && library.rows.length === file.records.size);
    for (const row of library.rows) assert.deepEqual(ious(row.id), row.ious["concept-attention"]);
    // and the words change the maps: without them some row's IoUs differ
    const plain = await run(args("tiny-flux", `${out}/plain.jsonl`));
    assert.equal(plain.code, 0, plain.text);
    const without = await readResults<LocalizationRecord>(`${out}/plain.jsonl`);
    assert.equal(without.header?.settings?.concepts, undefined);
    assert.ok(
      library.rows.some((row) => {
        const record = without.records.get(row.id);
        return record?.ok && JSON.stringify(record.result.ious) !== JSON.stringify(row.ious);
      }),
    );
  }

  // before the model loads: words without the method, the default methods, a blank or repeated word
  const refused = (
    extra: string[],
    pattern: RegExp,
    type: abstract new (...args: never[]) => Error = UsageError,
  ) =>
    assert.rejects(
      () => run(["localize", "--model", "/no/model", ...extra.concat("--results", "/no/r.jsonl")]),
      (error: Error) => error instanceof type && pattern.test(error.message),
    );
  const files = ["--coco-it", dataset.table, "--instances", dataset.instances];
  const expected =
    /--concepts names concept attention's extra words; expected concept-attention among --methods, got /;
  await refused([...files, "--methods", "information", "--concepts", "sky"], expected);
  await refused([...files, "--concepts", "sky"], /got the default methods/);
  await refused(
    [...files, "--methods", "concept-attention", "--concepts", "sky,,dog"],
    /concept 1 is ""; expected a non-blank word/,
    InvalidArgumentError,
  );
  await refused(
    [...files, "--methods", "concept-attention", "--concepts", "Sky,sky"],
    /concepts 0 and 1 are both "sky"/,
    InvalidArgumentError,
  );
  // SD 3 streams no concepts: refused once, with the reason, before any row or results file
  await assert.rejects(
    () => run([...args("tiny-sd3", `${out}/sd3.jsonl`), "--concepts", "sky"]),
    (error: Error) =>
      error instanceof InvalidArgumentError && /ConceptAttention's SD 3 code/.test(error.message),
  );
  await assert.rejects(() => Deno.stat(`${out}/sd3.jsonl`), Deno.errors.NotFound);
  await assert.rejects(
    () => run(["relations", ...MODEL, "--aro", "a.json", "--results", "r", "--concepts", "sky"]),
    (error: Error) =>
      error instanceof UsageError && /unknown option --concepts/.test(error.message),
  );
});
