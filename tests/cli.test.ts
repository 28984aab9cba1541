import assert from "node:assert/strict";
import { main } from "../src/cli/main.ts";
import { InfoDiffError } from "../src/errors.ts";
import sharp from "sharp";

const capture = async (run: () => Promise<number>) => {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    return { code: await run(), output: lines.join("\n") };
  } finally {
    console.log = original;
  }
};

/** A one-image query of the small v-prediction ONNX fixture, 8 draws on the CPU. */
const VPRED_QUERY = [
  "--model",
  "fixtures/models/sd-vpred",
  "--image",
  "fixtures/images/test-64.png",
  "--prompt",
  "a red circle",
  "--samples",
  "8",
  "--device",
  "cpu",
];

Deno.test("cli demo --oracle: prints the per-word table and writes one PNG per word", async () => {
  const out = await Deno.makeTempDir();
  const { code, output } = await capture(() =>
    main(["demo", "--oracle", "--out", out, "--samples", "20"])
  );
  assert.equal(code, 0);
  assert.match(output, /prompt: "a red circle on the left"/);
  assert.match(output, /^a\s+0\.0000\s+± 0\.0000$/m); // "a" is carried by no component: exactly 0
  for (const file of ["image.png", "1-red.png", "2-circle.png", "5-left.png", "result.json"]) {
    assert.ok((await Deno.stat(`${out}/${file}`)).isFile, file);
  }
  const meta = await sharp(`${out}/1-red.png`).metadata();
  assert.equal(meta.format, "png");
  assert.equal(meta.width, 256);
});

Deno.test("cli demo --scale each: says the grid's maps each have their own colour scale", async () => {
  const out = await Deno.makeTempDir();
  const { code, output } = await capture(() =>
    main(["demo", "--oracle", "--out", out, "--samples", "4", "--scale", "each"])
  );
  assert.equal(code, 0);
  assert.match(output, /grid\.png \(each map on its own colour scale\)/);
  assert.doesNotMatch(output, /one colour scale/);
});

Deno.test("cli demo: a held-out scene under shapes-flow, its caption, the table and overlays", async () => {
  const out = await Deno.makeTempDir();
  const { code, output } = await capture(() => main(["demo", "--out", out, "--samples", "4"]));
  assert.equal(code, 0);
  assert.match(output, /model: shapes-flow \(12×16×16\)/);
  const result = JSON.parse(await Deno.readTextFile(`${out}/result.json`));
  assert.ok(result.tokens.length >= 5);
  assert.equal(result.provenance.model.name, "shapes-flow");
  assert.match(result.provenance.model.sha256, /^[0-9a-f]{64}$/);
  // the scene's pixels, said to be pixels (its latent has as many values), at T5's length 16
  assert.equal(result.provenance.image.kind, "pixels");
  assert.equal(result.provenance.model.pipeline.maxSequenceLength, 16);
  for (const token of result.tokens) {
    assert.ok((await Deno.stat(`${out}/${token.index}-${token.word}.png`)).isFile);
  }
  // the picture is the scene's 32×32 pixels enlarged, not its latent
  assert.equal((await sharp(`${out}/image.png`).metadata()).width, 256);
  // the earlier demo model, by folder
  const tiny = await Deno.makeTempDir();
  const earlier = await capture(() =>
    main(["demo", "--out", tiny, "--samples", "4", "--model", "fixtures/models/shapes-tiny"])
  );
  assert.equal(earlier.code, 0);
  assert.match(earlier.output, /model: shapes-tiny \(3×32×32\)/);
  // a pipeline option with the oracle has nothing to set
  const empty = await Deno.makeTempDir();
  await assert.rejects(
    () => main(["demo", "--oracle", "--max-sequence-length", "8", "--out", empty]),
    (e: Error) =>
      e.name === "InvalidArgumentError" &&
      /example oracle loads nothing, so maxSequenceLength has nothing to set/.test(e.message),
  );
});

Deno.test("cli info: per-word table on an ONNX export fixture, overlays written", async () => {
  const out = await Deno.makeTempDir();
  const { code, output } = await capture(() =>
    main(["info", ...VPRED_QUERY, "--out", out, "--json"])
  );
  assert.equal(code, 0);
  const json = JSON.parse(output.split("\n")[0]);
  assert.deepEqual(json.tokens.map((t: { word: string }) => t.word), ["a", "red", "circle"]);
  for (const file of ["image.png", "1-red.png", "1-red-map.png", "maps/1-red.npy", "grid.png"]) {
    assert.ok((await Deno.stat(`${out}/${file}`)).isFile, file);
  }
  // what the model saw, at the export's resolution (not the model's 8×8 latent)
  assert.equal((await sharp(`${out}/image.png`).metadata()).width, 64);
  assert.ok(!JSON.stringify(json).includes('"map"'), "--json prints no maps");
  // result.json holds the numbers and their provenance
  const saved = JSON.parse(await Deno.readTextFile(`${out}/result.json`));
  assert.equal(saved.total.nats, json.total.nats);
  assert.equal(saved.provenance.model.backend, "onnx");
  assert.equal(saved.provenance.image.path, "fixtures/images/test-64.png");
  assert.match(saved.provenance.image.sha256, /^[0-9a-f]{64}$/);
  assert.equal(saved.provenance.settings.samples, 8);
});

Deno.test("cli: missing arguments and bad values are clear errors", async () => {
  await assert.rejects(
    () => main(["info", "--model", "x"]),
    (e: Error) => e instanceof InfoDiffError && /needs --image/.test(e.message),
  );
  await assert.rejects(
    () => main(["demo", "--samples", "many"]),
    /--samples expects a number, got "many"/,
  );
  const { code } = await capture(() => main(["frobnicate"]).catch(() => 2));
  assert.equal(code, 2);
});

Deno.test("cli --precision: info draws until its words' SEs reach the target, total its one number's", async () => {
  const query = [...VPRED_QUERY, "--json", "--quiet"];
  const info = JSON.parse(
    (await capture(() => main(["info", ...query, "--precision", "0.03"])))
      .output.split("\n")[0],
  );
  // at 8 draws "a" has an SE of 0.058 on this export: the target needs more rounds
  assert.ok(info.total.samples > 8 && info.total.samples <= 160, `${info.total.samples} draws`);
  for (const token of info.tokens) assert.ok(token.se <= 0.03, `${token.word}: ${token.se}`);
  // the words alone are the target (the whole prompt's total has an SE several times theirs)
  assert.deepEqual(info.provenance.settings.precision, { se: 0.03, maxSamples: 160, of: "words" });
  const total = JSON.parse(
    (await capture(() => main(["total", ...query, "--precision", "0.05"])))
      .output.split("\n")[0],
  );
  assert.ok(total.se <= 0.05 && total.samples > 8, `${total.se} after ${total.samples} draws`);
  assert.deepEqual(total.provenance.settings.precision, { se: 0.05, maxSamples: 160 });
  await assert.rejects(
    () => main(["total", ...query, "--precision", "0"]),
    (e: Error) =>
      e.name === "InvalidArgumentError" && /--precision expects a standard error in nats > 0/
        .test(e.message),
  );
  // nll has no contrast: no precision to ask for
  await assert.rejects(
    () => main(["nll", ...query, "--precision", "0.1"]),
    /unknown option --precision/,
  );
});
