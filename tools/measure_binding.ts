/**
 * Issue 28's binding figures on held-out shapes scenes (`shapesWorld({ seed, split: "test" })`,
 * which no model trained on):
 * - for every colour word and every shape word of a scene's caption, where its per-pixel
 *   conditional information (the `perToken` map, i(x; word | rest of the caption) per pixel) lies:
 *   the share on its own object's mask, on the other objects' masks, and (the rest) on the
 *   background; and, since a map puts much of a word's information on its object's outline (a
 *   16×16 map's 2 px cell straddles it), the share on the object or within 2 px of it (less the
 *   other objects' masks) and the share farther than 2 px from every object. Shares are ratios
 *   of sums over the scenes' words (Σ own / Σ whole map), so a word whose map is nearly flat
 *   counts as little as it carries; their SEs are bootstrap SEs over scenes (1000 resamples,
 *   seed 0). A map at the latent's resolution (a 2×2 space-to-depth latent is 16×16 for 32 px)
 *   is compared with the share of each latent cell that the mask covers;
 * - with `--generate N`, whether the model draws the layout a relation names: N held-out
 *   captions of two objects of different colours (test scenes, seed + 1), one sample each
 *   (`model.generate`, the model's own sampler and defaults, seed = the sample's index), each
 *   named colour's object read back from the pixels (src/datasets/shapes/recognise.ts: the
 *   largest blob of that colour, ≥ 8 px); right when both are found and the first object's box
 *   centre lies on the named side of the second's (left of: smaller x; above: smaller y).
 *   Binomial SEs;
 * - relation and attribute-swap accuracy on the world's ARO export (tools/measure_shapes.ts's
 *   items: the relation item swaps the two related objects, the attribution item their colours),
 *   with relationStudy's binomial SE over items, for the orthogonal (the paper's) and the standard
 *   (log-likelihood ratio) estimator.
 *
 * Usage (from the repository root):
 *   npx -y deno@2.9.6 run -A tools/measure_binding.ts [--model fixtures/models/shapes-tiny]
 *     [--count 40] [--samples 64] [--seed 1] [--max-sequence-length N] [--threads N]
 *     [--log-snr-range MIN,MAX [--outside-trained-range]] [--generate N]
 *     [--map-estimator orthogonal|standard] [--maps-only] [--out out/measure_binding.json]
 *
 * --map-estimator picks the form of the per-pixel maps (default orthogonal, `perToken`'s default;
 * standard: the log-likelihood ratio's own per-pixel terms, signed, so a share can pass 100 % when
 * the map is negative elsewhere). --maps-only leaves out the ARO swaps (they run both forms anyway).
 *
 * --threads 1 on a loaded shared CPU: a 2-thread pool that waits for a descheduled peer wastes its
 * share (10× slower under `nice` on the 2-core CPU at load 9).
 *
 * --log-snr-range integrates α over [MIN, MAX] (the sampling defaultLogSnrSampling makes of that range)
 * instead of the model's trained range: to compare two models over the same α (SD's:
 * -5.364,7.069). --outside-trained-range lets that interval pass the model's trained range (a flow
 * model's scheduler grid, α ∈ ±13.8 at shift 1, reaches far past its training law's bulk, ±6.18).
 *
 * Prints a markdown table and writes the JSON.
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { type ShapesScene, shapesWorld } from "../src/datasets/shapes/world.ts";
import { COLOURS, SHAPES } from "../src/datasets/shapes/caption.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { readAro } from "../src/datasets/aro.ts";
import { loadModel } from "../src/query/load-model.ts";
import { relationStudy } from "../src/studies/relations.ts";
import { checkEstimator, type EstimatorName } from "../src/estimators/options.ts";
import { defaultLogSnrSampling } from "../src/numerics/log-snr.ts";
import { findObject } from "../src/datasets/shapes/recognise.ts";
import { BORDER_PX, type Share, share, type WordSums, wordSums } from "./binding_shares.ts";
import type { Model } from "../src/query/model.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "fixtures/models/shapes-tiny" },
    count: { type: "string", default: "40" },
    samples: { type: "string", default: "64" },
    seed: { type: "string", default: "1" },
    "max-sequence-length": { type: "string" },
    threads: { type: "string" },
    "log-snr-range": { type: "string" },
    "outside-trained-range": { type: "boolean", default: false },
    out: { type: "string", default: "out/measure_binding.json" },
    generate: { type: "string", default: "0" },
    "map-estimator": { type: "string", default: "orthogonal" },
    "maps-only": { type: "boolean", default: false },
  },
});
const mapEstimator = checkEstimator(args["map-estimator"]);
const count = Number(args.count), samples = Number(args.samples), seed = Number(args.seed);

/** Share with its binomial standard error. */
function binomial(hits: number, n: number) {
  const p = n ? hits / n : NaN;
  return { share: p, se: Math.sqrt(p * (1 - p) / n), hits, n };
}

/** Whether samples of two-object captions put the objects as their relation says. */
async function generatedRelations(model: Model, n: number) {
  const scenes: ShapesScene[] = [];
  for (let c = 4 * n; scenes.length < n; c *= 2) {
    scenes.length = 0;
    for (const s of shapesWorld({ seed: seed + 1, count: c, split: "test" }).scenes) {
      if (s.objects.length === 2 && s.objects[0].colour !== s.objects[1].colour) scenes.push(s);
      if (scenes.length === n) break;
    }
  }
  let found = 0, right = 0;
  for (const [i, scene] of scenes.entries()) {
    const data = await model.generate(scene.caption, { seed: i });
    const pixels = model.decode ? await model.decode(data) : data;
    const [a, b] = scene.objects.map((o) => findObject(pixels, scene.size, scene.size, o.colour));
    if (!a || !b) continue;
    found++;
    const centre = (o: typeof a, axis: 0 | 1) => (o.box[axis] + o.box[axis + 2]) / 2;
    const relation = scene.caption.match(/left of|right of|above|below/)![0];
    const axis = relation === "left of" || relation === "right of" ? 0 : 1;
    const before = centre(a, axis) < centre(b, axis);
    if (before === (relation === "left of" || relation === "above")) right++;
  }
  return {
    found: binomial(found, n),
    right: binomial(right, n),
    rightWhenFound: binomial(right, found),
  };
}

const world = shapesWorld({ seed, count, split: "test" });
const dir = await Deno.makeTempDir({ prefix: "measure-binding-" });
await exportShapesDataset(world, dir);
const aro = [
  ...await readAro(join(dir, "aro_relation.json")),
  ...await readAro(join(dir, "aro_attribution.json")),
];
const maxSequenceLength = args["max-sequence-length"]
  ? Number(args["max-sequence-length"])
  : undefined;
const model = await loadModel(args.model!, {
  device: "cpu",
  ...(maxSequenceLength ? { maxSequenceLength } : {}),
  ...(args.threads ? { threads: Number(args.threads) } : {}),
});
const range = args["log-snr-range"]?.split(",").map(Number);
if (range && (range.length !== 2 || !range.every(Number.isFinite) || range[0] >= range[1])) {
  throw new Error(`--log-snr-range takes MIN,MAX with MIN < MAX, got ${args["log-snr-range"]}`);
}
const logSnr = range ? defaultLogSnrSampling({ min: range[0], max: range[1] }) : undefined;
const outside = { allowOutsideTrainedRange: args["outside-trained-range"] };
const started = performance.now();
const sums: WordSums[] = [];
const targets = new Set<string>([...COLOURS, ...SHAPES]);
try {
  for (const scene of world.scenes) {
    // the exported PNG (lossless), not scene.toData(): a Float32Array as long as the model's
    // data is taken as model data, and an exact 2×2 space-to-depth latent is as long as the pixels
    const image = join(dir, "images", `${scene.id}.png`);
    const query = model.info(image).given(scene.caption).samples(samples).seed(scene.id)
      .estimator(mapEstimator);
    const result = await (logSnr ? query.logSnr(logSnr, outside) : query).perToken();
    for (const token of result.tokens) {
      if (targets.has(token.word)) sums.push(wordSums(scene, token.word, token.map));
    }
  }
  console.error(`${model.name}: maps of ${sums.length} words done`);
  const relations: Record<string, unknown> = {};
  const swapForms: EstimatorName[] = args["maps-only"] ? [] : ["orthogonal", "standard"];
  for (const estimator of swapForms) {
    const result = await relationStudy(model, aro, {
      samples,
      seed: 0,
      estimator,
      // a fresh store per run and estimator: the study calibrates on its first items as shipped,
      // never on a profile an earlier run left in the user's cache (figures repeat exactly)
      calibration: { store: join(dir, `profiles-${estimator}`) },
      ...(logSnr ? { logSnr, ...outside } : {}),
    });
    const kind = (name: string) => result.byKind.find((k) => k.name === name);
    relations[estimator] = {
      relation: kind("relation"),
      attribution: kind("attribution"),
      bad: result.failures.length,
    };
    console.error(`${model.name}: relations (${estimator}) done`);
  }
  const generation = Number(args.generate) > 0
    ? await generatedRelations(model, Number(args.generate))
    : undefined;
  const shares: Record<string, { own: Share; others: Share; ownNear: Share; far: Share }> = {};
  // by object count too: the exact ceiling (tools/measure_binding_ceiling.ts) differs with it
  const groups: [string, (objects: number) => boolean][] = [
    ["", () => true],
    [" (≥ 2 objects)", (n) => n >= 2],
    [" (1 object)", (n) => n === 1],
    [" (2 objects)", (n) => n === 2],
    [" (3 objects)", (n) => n === 3],
  ];
  for (const kind of ["colour", "shape"] as const) {
    for (const [label, objects] of groups) {
      const rows = sums.filter((r) => r.kind === kind && objects(r.objects));
      if (rows.length === 0) continue;
      shares[`${kind}${label}`] = {
        own: share(rows, "own"),
        others: share(rows, "others"),
        ownNear: share(rows, "ownNear"),
        far: share(rows, "far"),
      };
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const pct = (v: number, se: number) => `${(100 * v).toFixed(1)} % ± ${(100 * se).toFixed(1)}`;
  type Acc = { accuracy: number; se: number; n: number };
  const acc = (a: Acc | undefined, bad: number) =>
    a ? `${pct(a.accuracy, a.se)} (n=${a.n})` : `— (${bad} items failed)`;
  const r = relations as Record<string, { relation?: Acc; attribution?: Acc; bad: number }>;
  const lines = [
    `${model.name}: ${count} held-out test scenes (seed ${seed}), ${samples} draws per query; ` +
    `${aro.length} ARO items; ${mapEstimator} maps; ${seconds.toFixed(0)} s` +
    (range ? `; α ∈ [${range[0]}, ${range[1]}]` : ""),
    "",
    `| words | on own object | on other objects | within ${BORDER_PX} px of own object | ` +
    `farther than ${BORDER_PX} px from every object | words (scenes) |`,
    "|---|---|---|---|---|---|",
    ...Object.entries(shares).map(([k, s]) =>
      `| ${k} | ${pct(s.own.share, s.own.se)} | ${pct(s.others.share, s.others.se)} | ` +
      `${pct(s.ownNear.share, s.ownNear.se)} | ${pct(s.far.share, s.far.se)} | ` +
      `${s.own.words} (${s.own.scenes}) |`
    ),
    "",
    "| estimator | relation swaps | attribute swaps |",
    "|---|---|---|",
    ...Object.entries(r).map(([k, v]) =>
      `| ${k} | ${acc(v.relation, v.bad)} | ${acc(v.attribution, v.bad)} |`
    ),
    ...(generation
      ? [
        "",
        `samples of ${generation.found.n} two-object captions: both colours found ` +
        `${pct(generation.found.share, generation.found.se)}; named relation drawn ` +
        `${pct(generation.right.share, generation.right.se)} of all, ` +
        `${pct(generation.rightWhenFound.share, generation.rightWhenFound.se)} of those found`,
      ]
      : []),
  ];
  console.log(lines.join("\n"));
  await Deno.mkdir(dirname(args.out!), { recursive: true });
  await Deno.writeTextFile(
    args.out!,
    JSON.stringify(
      {
        model: model.name,
        count,
        samples,
        seed,
        range,
        mapEstimator,
        seconds,
        shares,
        relations,
        generation,
        words: sums,
      },
      null,
      1,
    ),
  );
  console.error(`wrote ${args.out}`);
} finally {
  await model.dispose();
  await Deno.remove(dir, { recursive: true });
}
