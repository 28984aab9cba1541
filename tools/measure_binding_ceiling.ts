/**
 * The exact ceiling of issue 28's binding measure on scenes of one to three objects: where a perfect
 * model of the shapes world puts a colour or shape word's per-pixel information, beside
 * shapes-flow.
 *
 * The exact model is tools/exact_shapes_world.ts: p(x | caption) of the world's own generator,
 * every layout a caption allows a narrow Gaussian weighted as the generator weighs it (one object:
 * 4 colours × 3 shapes × 2 sizes × every centre, 11,832 pictures; two objects: every pair of
 * placements whose boxes are apart and whose relation is the named one, summed in factorised
 * form; three objects: the third's placements apart from both, by summed-area sums). A word's removal leaves its attribute open. Its information is exact up to the
 * estimator's Monte Carlo error, and zero where x_α already shows the colour (low noise): whatever
 * a model puts there is its error.
 *
 * For each held-out test scene (seed 1) of the chosen object counts, the colour and shape words'
 * contrasts (the caption against the caption without the word, as `perToken` removes it), on
 * shared draws, on the exact model and on the model under test, α integrated over the same
 * interval (the flow model's trained range ±6.18 by default; `--bands` adds three
 * sub-intervals), the shares as `measure_binding` computes them (tools/binding_shares.ts): on the
 * object's mask, within 2 px of it, farther; the exact model's 32×32 maps also pooled to the
 * model's 16×16 cells. Bootstrap SEs over scenes.
 *
 * Usage: npx -y deno@2.9.6 run -A tools/measure_binding_ceiling.ts [--model fixtures/models/shapes-flow]
 *   [--max-sequence-length 16] [--objects 1,2] [--scenes 20] [--samples 128] [--range -6.18,6.18]
 *   [--bands] [--relations] [--estimator orthogonal|standard] [--out out/measure_binding/ceiling.json]
 *
 * --relations also measures each two-object caption's relation word ("left", "right", "above",
 * "below": removing it leaves the relation open) on both models, in a plan of its own so the
 * colour and shape figures stay as they are: its information in nats, per α interval.
 *
 * --estimator picks the estimator form of every contrast (default the estimators' default, the
 * orthogonal form); "standard" gives the form the intervention study's relation nats are in.
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { loadModel } from "../src/query/load-model.ts";
import { defaultLogSnrSampling } from "../src/numerics/log-snr.ts";
import { Heatmap } from "../src/images/heatmap.ts";
import {
  type ContrastPlan,
  contrastPlan,
  type ContrastResult,
  estimateContrasts,
} from "../src/estimators/contrasts.ts";
import { conditionalPlan } from "../src/estimators/conditional-information.ts";
import { checkEstimator, resolveOptions } from "../src/estimators/options.ts";
import type { Denoiser } from "../src/models/denoiser.ts";
import { meanWithError } from "../src/numerics/statistics.ts";
import { share, type WordSums, wordSums } from "./binding_shares.ts";
import { exactShapesWorld, parseWorldPrompt } from "./exact_shapes_world.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "fixtures/models/shapes-flow" },
    "max-sequence-length": { type: "string", default: "16" },
    objects: { type: "string", default: "1,2" },
    scenes: { type: "string", default: "20" },
    samples: { type: "string", default: "128" },
    range: { type: "string", default: "-6.18,6.18" },
    bands: { type: "boolean", default: false },
    relations: { type: "boolean", default: false },
    estimator: { type: "string", default: "orthogonal" },
    out: { type: "string", default: "out/measure_binding/ceiling.json" },
  },
});
const SIZE = 32;
const estimator = checkEstimator(args.estimator);
const samples = Number(args.samples);
const [min, max] = args.range!.split(",").map(Number);
if (!(min < max)) throw new Error(`--range takes MIN,MAX with MIN < MAX, got ${args.range}`);
const intervals: [number, number][] = [[min, max]];
if (args.bands) intervals.push([min, -2], [-2, 2], [2, max]);

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

const counts = args.objects!.split(",").map(Number);
if (!counts.every((n) => n === 1 || n === 2 || n === 3)) {
  throw new Error(`--objects takes object counts from 1 to 3, e.g. 1,2 or 3`);
}
const exact = exactShapesWorld(SIZE);
const model = await loadModel(args.model!, {
  device: "cpu",
  maxSequenceLength: Number(args["max-sequence-length"]),
});
const scenes = counts.flatMap((n) =>
  shapesWorld({ seed: 1, split: "test", count: 600 }).scenes
    .filter((s) => s.objects.length === n).slice(0, Number(args.scenes))
);
// the premise: every held-out scene is, pixel for pixel, one of the exact model's layouts for its
// caption
for (const scene of scenes) {
  const [a, b] = scene.objects, read = parseWorldPrompt(scene.caption);
  const fits = read.objects.every((slot, i) =>
    slot.colour === scene.objects[i].colour && slot.shape === scene.objects[i].shape
  ) && read.relation === scene.relation && (!b || exact.allowed(a, b, scene.relation));
  const data = scene.toData();
  if (
    !fits || exact.picture(scene.objects).some((v, i) =>
      v !== data[i]
    )
  ) {
    throw new Error(
      `scene ${scene.id} ("${scene.caption}") is not one of the exact model's layouts`,
    );
  }
}
/** Runs a plan on a scene's data on the exact world and on the model, over every interval. */
async function onBoth(
  scene: (typeof scenes)[number],
  plan: ContrastPlan,
  data: Float32Array,
  record: (name: string, contrasts: ContrastResult[], interval: [number, number]) => void,
) {
  const runs: [string, Denoiser, Float32Array][] = [
    ["exact", exact, data],
    [model.name, model, await model.prepare({ pixels: data })],
  ];
  for (const [lo, hi] of intervals) {
    const logSnr = defaultLogSnrSampling({ min: lo, max: hi });
    for (const [name, m, image] of runs) {
      const options = {
        samples,
        seed: scene.id,
        logSnr,
        estimator,
        allowOutsideTrainedRange: true,
      };
      const outcome = await estimateContrasts(m, image, plan, resolveOptions(m, options));
      record(name, outcome.contrasts, [lo, hi]);
    }
  }
}
const relationNats: Record<string, number[]> = {};
const rows: Record<string, WordSums[]> = {};
const nats: Record<string, number[]> = {};
const started = performance.now();
for (const scene of scenes) {
  const words = scene.objects.flatMap((o) => [o.colour as string, o.shape]);
  const plan = contrastPlan(
    words.map((w) => [scene.caption, conditionalPlan(scene.caption, w).prompts[1]] as const),
  );
  const data = scene.toData();
  await onBoth(scene, plan, data, (name, contrasts, [lo, hi]) => {
    contrasts.forEach(({ map, estimate }, i) => {
      const kind = i % 2 === 0 ? "colour" : "shape";
      const maps = name === "exact"
        ? [["exact", map], ["exact, 16×16 cells", pooled(map)]] as const
        : [[name, map]] as const;
      for (const [label, m] of maps) {
        const key = `${label} | ${kind} | ${scene.objects.length} object(s) | α ∈ [${lo}, ${hi}]`;
        (rows[key] ??= []).push(wordSums(scene, words[i], m));
        (nats[key] ??= []).push(estimate.nats);
      }
    });
  });
  if (args.relations && scene.relation) {
    // a plan of its own, so the colour and shape figures are the same with or without it
    const word = scene.relation.split(" ")[0];
    const relation = contrastPlan([[
      scene.caption,
      conditionalPlan(scene.caption, word).prompts[1],
    ]]);
    await onBoth(scene, relation, data, (name, [result], [lo, hi]) => {
      (relationNats[`${name} | α ∈ [${lo}, ${hi}]`] ??= []).push(result.estimate.nats);
    });
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
  const of = (part: "own" | "others" | "ownNear" | "far") => carried ? share(r, part) : undefined;
  return {
    key,
    own: of("own"),
    others: of("others"),
    ownNear: of("ownNear"),
    far: of("far"),
    nats: mean,
  };
});
console.log(
  `${scenes.length} held-out scenes, ${samples} draws\n\n` +
    "| map | word | objects | α | on own object | on the others | within 2 px | farther than 2 px " +
    "| mean nats |\n|---|---|---|---|---|---|---|---|---|\n" +
    table.map((t) =>
      `| ${t.key} | ${pct(t.own)} | ${pct(t.others)} | ${pct(t.ownNear)} | ${pct(t.far)} | ` +
      `${t.nats.toFixed(3)} |`
    ).join("\n"),
);
if (args.relations) {
  const cell = (values: number[]) => {
    const m = meanWithError(values);
    return `${m.mean.toFixed(2)} ± ${m.se.toFixed(2)}`;
  };
  console.log(
    "\n\n| relation word of two-object scenes: model | α | mean nats ± SE over scenes |\n|---|---|---|\n" +
      Object.entries(relationNats).map(([key, v]) => `| ${key} | ${cell(v)} |`).join("\n"),
  );
}
await Deno.writeTextFile(
  args.out!,
  JSON.stringify({ scenes: scenes.length, samples, table, rows, nats, relationNats }),
);
await model.dispose();
