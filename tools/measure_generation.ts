/**
 * Issue 4's generation measurement: DDIM samples from held-out (test-split) single-object captions
 * of the shapes world, judged by a simple rule on the pixels (src/datasets/shapes/recognise.ts):
 * - colour right: a blob of the named colour (≥ 8 px) exists;
 * - shape right: "the object" has the named shape — the largest blob of the named colour, or,
 *   when there is none, the largest blob of any palette colour;
 * - both right: a blob of the named colour exists and has the named shape.
 * Shares are reported with binomial standard errors, for shapes-tiny (when its folder exists) and
 * for the exact oracle of the training world (its first `--oracle-scenes` scenes, the ceiling: it
 * can only reproduce training scenes). A PNG grid of the first samples of each model is written.
 *
 * Usage: npx -y deno@2.9.6 run -A tools/measure_generation.ts [--model fixtures/models/shapes-tiny]
 *   [--count 120] [--steps 50] [--grid /tmp/generation_grid.png] [--json out/generation.json]
 */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { ddimBatch, initialNoise, toPixels } from "../src/generation/ddim.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import type { ShapesScene } from "../src/datasets/shapes/world.ts";
import { shapesOracle } from "../src/query/oracles.ts";
import { findObject, largestObject } from "../src/datasets/shapes/recognise.ts";
import { loadModel } from "../src/query/load-model.ts";
import type { Model } from "../src/query/model.ts";
import { chwToRgb, rgbToPng, writePng } from "../src/images/png.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "fixtures/models/shapes-tiny" },
    count: { type: "string", default: "120" },
    steps: { type: "string", default: "50" },
    seed: { type: "string", default: "1" },
    "oracle-scenes": { type: "string", default: "400" },
    grid: { type: "string", default: "/tmp/generation_grid.png" },
    json: { type: "string", default: "out/generation.json" },
  },
});
const count = Number(values.count), steps = Number(values.steps), seed = Number(values.seed);

/** One judged sample. */
interface Judged {
  caption: string;
  colour: boolean;
  shape: boolean;
  both: boolean;
  pixels: Float32Array;
}

/** Share with its binomial standard error. */
function share(hits: number, n: number) {
  const p = hits / n;
  return { share: p, se: Math.sqrt(p * (1 - p) / n), hits, n };
}

async function generateAll(model: Model, scenes: readonly ShapesScene[]): Promise<Judged[]> {
  const judged: Judged[] = [];
  const batch = 16;
  for (let first = 0; first < scenes.length; first += batch) {
    const part = scenes.slice(first, first + batch);
    const data = await ddimBatch(
      model,
      part.map((scene, i) => ({ prompt: scene.caption, start: initialNoise(model, first + i) })),
      "generate",
      { steps },
    );
    for (const [i, scene] of part.entries()) {
      const pixels = await toPixels(model, data[i]);
      const { colour, shape } = scene.objects[0];
      const size = scene.size;
      // "the object": the blob of the named colour, else the largest blob of any colour
      const named = findObject(pixels, size, size, colour);
      const object = named ?? largestObject(pixels, size, size);
      judged.push({
        caption: scene.caption,
        colour: named !== undefined,
        shape: object?.shape === shape,
        both: named !== undefined && named.shape === shape,
        pixels,
      });
    }
  }
  return judged;
}

function summarise(name: string, judged: Judged[]) {
  const n = judged.length;
  const result = {
    model: name,
    colour: share(judged.filter((j) => j.colour).length, n),
    shape: share(judged.filter((j) => j.shape).length, n),
    both: share(judged.filter((j) => j.both).length, n),
  };
  const pct = (s: { share: number; se: number }) =>
    `${(100 * s.share).toFixed(1)} % ± ${(100 * s.se).toFixed(1)}`;
  console.log(
    `${name.padEnd(44)} colour ${pct(result.colour)}   shape ${pct(result.shape)}   both ${
      pct(result.both)
    }   (n = ${n})`,
  );
  return result;
}

/** Rows of the first `columns` samples of each model, 3× upscaled, 2 px grey gaps. */
async function writeGrid(path: string, rows: Judged[][], size: number, columns: number) {
  const scale = 3, gap = 2, tile = size * scale;
  const width = columns * (tile + gap) + gap, height = rows.length * (tile + gap) + gap;
  const rgb = new Uint8Array(width * height * 3).fill(96);
  rows.forEach((row, r) => {
    row.slice(0, columns).forEach((sample, c) => {
      const tileRgb = chwToRgb(sample.pixels, 3, size, size, { clamp: true });
      for (let y = 0; y < tile; y++) {
        for (let x = 0; x < tile; x++) {
          const source = (Math.floor(y / scale) * size + Math.floor(x / scale)) * 3;
          const target = ((gap + r * (tile + gap) + y) * width + gap + c * (tile + gap) + x) * 3;
          rgb.set(tileRgb.subarray(source, source + 3), target);
        }
      }
    });
  });
  await writePng(path, await rgbToPng(rgb, width, height));
}

const test = shapesWorld({ seed, split: "test", count: count * 8 });
const scenes = test.scenes.filter((s) => s.objects.length === 1).slice(0, count);
if (scenes.length < count) throw new Error(`only ${scenes.length} single-object test scenes`);
console.log(`${scenes.length} held-out single-object captions, ${steps} DDIM steps, seeds 0…`);

const rows: Judged[][] = [];
const results = [];
if (existsSync(`${values.model}/model_index.json`)) {
  const model = await loadModel(values.model, { device: "cpu" });
  const started = performance.now();
  const judged = await generateAll(model, scenes);
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  results.push(summarise(model.name, judged));
  rows.push(judged);
  await model.dispose();
} else {
  console.log(`${values.model} not found: oracle only`);
}
const train = shapesWorld({ seed, split: "train", count: Number(values["oracle-scenes"]) });
const oracle = shapesOracle(train);
const usable = scenes.filter((s) => {
  try {
    oracle.condition(s.caption);
    return true;
  } catch {
    return false;
  }
});
const judged = await generateAll(oracle, usable);
results.push(summarise(`${oracle.name} [${usable.length} captions it supports]`, judged));
rows.push(judged);

await writeGrid(values.grid, rows, test.size, 12);
console.log(
  `grid (rows: ${rows.length === 2 ? "shapes-tiny, oracle" : "oracle"}) → ${values.grid}`,
);
console.log(
  `captions of the grid columns: ${scenes.slice(0, 12).map((s) => s.caption).join(" | ")}`,
);
await Deno.mkdir("out", { recursive: true });
await Deno.writeTextFile(values.json, JSON.stringify({ steps, count, seed, results }, null, 2));
