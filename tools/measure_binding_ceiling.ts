/**
 * The exact ceiling of issue 28's binding measure on one-object scenes: where a perfect model of
 * the shapes world puts a colour or shape word's per-pixel information, beside shapes-flow.
 *
 * The exact model is the mixture of every one-object scene the world can draw (4 colours × 3
 * shapes × 2 sizes × every centre the generator allows: 11,832 narrow Gaussians, each weighted by
 * the world's probability of its layout: 1 / (centres of its size)). A one-object caption names
 * one object, so "contains these words" is exactly the caption's meaning and the mixture is the
 * exact p(x | caption) of one-object captions; every held-out one-object scene is one of its
 * components. Its information is exact up to the estimator's Monte Carlo error, and it is zero
 * where x_α already shows the colour (low noise): whatever a model puts there is its error.
 *
 * For each held-out one-object test scene (seed 1), the colour and the shape word's `perToken`
 * maps on the exact model and on the model under test, α integrated over the same interval (the
 * flow model's trained range ±6.18 by default; `--bands` adds three sub-intervals), the shares as
 * `measure_binding` computes them (tools/binding_shares.ts): on the object's mask, within 2 px of
 * it, farther; the exact model's 32×32 maps also pooled to the model's 16×16 cells. Bootstrap SEs
 * over scenes.
 *
 * Usage: npx -y deno@2.9.6 run -A tools/measure_binding_ceiling.ts [--model fixtures/models/shapes-flow]
 *   [--max-sequence-length 16] [--scenes 20] [--samples 128] [--range -6.18,6.18] [--bands]
 *   [--out out/measure_binding/ceiling.json]
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { drawShape, type ShapeName } from "../src/datasets/shapes/draw.ts";
import { COLOUR_RGB, COLOURS, SHAPES, SIZES } from "../src/datasets/shapes/caption.ts";
import { hwcToChw, shapesGeometry, shapesWorld } from "../src/datasets/shapes/world.ts";
import { mixtureModel } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { defaultLogSnrSampling } from "../src/numerics/log-snr.ts";
import { Heatmap } from "../src/images/heatmap.ts";
import type { Model } from "../src/query/model.ts";
import { share, type WordSums, wordSums } from "./binding_shares.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "fixtures/models/shapes-flow" },
    "max-sequence-length": { type: "string", default: "16" },
    scenes: { type: "string", default: "20" },
    samples: { type: "string", default: "128" },
    range: { type: "string", default: "-6.18,6.18" },
    bands: { type: "boolean", default: false },
    out: { type: "string", default: "out/measure_binding/ceiling.json" },
  },
});
const SIZE = 32;
const samples = Number(args.samples);
const [min, max] = args.range!.split(",").map(Number);
if (!(min < max)) throw new Error(`--range takes MIN,MAX with MIN < MAX, got ${args.range}`);
const intervals: [number, number][] = [[min, max]];
if (args.bands) intervals.push([min, -2], [-2, 2], [2, max]);

/** Every one-object scene the world can draw, weighted by its probability. */
function oneObjectWorld(): { model: Model; pictures: Map<string, Float32Array> } {
  const geometry = shapesGeometry(SIZE);
  const components = [];
  const pictures = new Map<string, Float32Array>();
  for (const colour of COLOURS) {
    for (const shape of SHAPES) {
      for (const size of SIZES) {
        const radius = geometry.radius[size], span = SIZE - 2 * radius + 1;
        for (let cx = radius; cx < radius + span; cx++) {
          for (let cy = radius; cy < radius + span; cy++) {
            const mask = drawShape(shape as ShapeName, SIZE, cx, cy, radius);
            const rgb = new Uint8Array(SIZE * SIZE * 3);
            for (let p = 0; p < mask.length; p++) if (mask[p]) rgb.set(COLOUR_RGB[colour], 3 * p);
            const words = ["a", colour, shape, size];
            const mean = hwcToChw(rgb, SIZE);
            pictures.set(`${colour} ${shape} ${size} ${cx} ${cy}`, mean);
            components.push({
              words,
              mean,
              variance: 1e-3,
              weight: 1 / span ** 2,
            });
          }
        }
      }
    }
  }
  const name = "exact one-object world";
  return { model: mixtureModel({ shape: [3, SIZE, SIZE], components, name }), pictures };
}

/** The map summed over 2×2 cells: the exact model's 32×32 map at a 2×2-packed model's 16×16. */
function pooled(map: Heatmap): Heatmap {
  const width = map.width / 2, data = new Float32Array(width * width);
  for (let y = 0; y < map.height; y++) {
    for (let x = 0; x < map.width; x++) {
      data[(y >> 1) * width + (x >> 1)] += map.data[y * map.width + x];
    }
  }
  return new Heatmap(width, width, data);
}

const { model: exact, pictures } = oneObjectWorld();
const model = await loadModel(args.model!, {
  device: "cpu",
  maxSequenceLength: Number(args["max-sequence-length"]),
});
const scenes = shapesWorld({ seed: 1, split: "test", count: 400 }).scenes
  .filter((s) => s.objects.length === 1).slice(0, Number(args.scenes));
// the premise: every held-out one-object scene is, pixel for pixel, one of the mixture's pictures
for (const scene of scenes) {
  const [o] = scene.objects;
  const picture = pictures.get(`${o.colour} ${o.shape} ${o.size} ${o.cx} ${o.cy}`);
  const data = scene.toData();
  if (!picture || picture.some((v, i) => v !== data[i])) {
    throw new Error(
      `scene ${scene.id} ("${scene.caption}") is not one of the exact model's pictures`,
    );
  }
}
const rows: Record<string, WordSums[]> = {};
const nats: Record<string, number[]> = {};
const started = performance.now();
for (const scene of scenes) {
  const [object] = scene.objects;
  for (const [lo, hi] of intervals) {
    const sampling = defaultLogSnrSampling({ min: lo, max: hi });
    const data = scene.toData();
    const runs = [["exact", exact, data], [model.name, model, { pixels: data }]] as const;
    for (const [name, m, image] of runs) {
      const result = await m.info(image).given(scene.caption).samples(samples).seed(scene.id)
        .logSnr(sampling, { allowOutsideTrainedRange: true }).perToken();
      for (const token of result.tokens) {
        if (token.word !== object.colour && token.word !== object.shape) continue;
        const kind = token.word === object.colour ? "colour" : "shape";
        const maps = name === "exact"
          ? [["exact", token.map], ["exact, 16×16 cells", pooled(token.map)]] as const
          : [[name, token.map]] as const;
        for (const [label, map] of maps) {
          const key = `${label} | ${kind} | α ∈ [${lo}, ${hi}]`;
          (rows[key] ??= []).push(wordSums(scene, token.word, map));
          (nats[key] ??= []).push(token.estimate.nats);
        }
      }
    }
  }
  console.error(
    `${scene.id}: ${scene.caption} (${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
}
// the sums first: a share of maps that carry nothing (the exact model at low noise) is undefined
await Deno.mkdir(dirname(args.out!), { recursive: true });
await Deno.writeTextFile(args.out!, JSON.stringify({ scenes: scenes.length, samples, rows, nats }));
const pct = (s?: { share: number; se: number }) =>
  s ? `${(100 * s.share).toFixed(1)} % ± ${(100 * s.se).toFixed(1)}` : "— (no information)";
const table = Object.entries(rows).map(([key, r]) => {
  const mean = nats[key].reduce((a, b) => a + b, 0) / nats[key].length;
  const carried = r.some((w) => w.total > 0);
  const of = (part: "own" | "ownNear" | "far") => carried ? share(r, part) : undefined;
  return { key, own: of("own"), ownNear: of("ownNear"), far: of("far"), nats: mean };
});
console.log(
  `${scenes.length} held-out one-object scenes, ${samples} draws\n\n` +
    "| map | word | α | on own object | within 2 px | farther than 2 px | mean nats |\n" +
    "|---|---|---|---|---|---|---|\n" +
    table.map((t) =>
      `| ${t.key} | ${pct(t.own)} | ${pct(t.ownNear)} | ${pct(t.far)} | ${t.nats.toFixed(3)} |`
    ).join("\n"),
);
await Deno.writeTextFile(
  args.out!,
  JSON.stringify({ scenes: scenes.length, samples, table, rows, nats }),
);
await model.dispose();
