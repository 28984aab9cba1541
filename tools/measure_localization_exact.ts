/**
 * How well a perfect model's information maps can localise a word in the shapes world: the
 * localization study (the conditional information map of each colour and shape word against its
 * object's mask, mIoU at the best global threshold, as notebook 02 runs it) on the exact world of
 * tools/exact_shapes_world.ts beside a trained model, on the same held-out scenes of the object
 * counts asked for (`--objects`, default 1,2 as measured first on 2026-12-06; `--objects 3` the
 * three-object scenes, which the exact world sums over triples), the same draws and the same α
 * interval, and the
 * paired difference of the two models' information maps over those rows (each row's IoU at its
 * model's best global threshold; SE over rows, as each mIoU's).
 *
 *   npx -y deno@2.9.6 run -A tools/measure_localization_exact.ts [--count 60] [--samples 32]
 *     [--model fixtures/models/shapes-flow] [--max-sequence-length 16] [--range -6.18,6.18]
 *     [--objects 1,2]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { shapesLocalizationRows } from "../src/studies/localization-rows.ts";
import { localizationStudy } from "../src/studies/localization.ts";
import { loadModel } from "../src/query/load-model.ts";
import { createModel } from "../src/query/model.ts";
import { defaultLogSnrSampling } from "../src/numerics/log-snr.ts";
import { meanWithError } from "../src/numerics/statistics.ts";
import { exactShapesWorld } from "./exact_shapes_world.ts";

const { values: args } = parseArgs({
  options: {
    count: { type: "string", default: "60" },
    samples: { type: "string", default: "32" },
    model: { type: "string", default: "fixtures/models/shapes-flow" },
    "max-sequence-length": { type: "string", default: "16" },
    range: { type: "string", default: "-6.18,6.18" },
    objects: { type: "string", default: "1,2" },
  },
});
const counts = args.objects!.split(",").map(Number);
if (counts.some((n) => ![1, 2, 3].includes(n))) {
  throw new Error(`--objects takes object counts among 1, 2 and 3, got ${args.objects}`);
}
const [min, max] = args.range!.split(",").map(Number);
const world = shapesWorld({ seed: 1, count: Number(args.count), split: "test" });
const scenes = world.scenes.filter((s) => counts.includes(s.objects.length));
const pixels = new Map(scenes.map((s) => [`scene ${s.id}`, s.toData()]));
// the pixels go in tagged: a 2×2-packed model's data are as long as its pixels
const rows = shapesLocalizationRows({ ...world, scenes }).map(({ data: _, ...row }) => row);
const trained = await loadModel(args.model!, {
  device: "cpu",
  maxSequenceLength: Number(args["max-sequence-length"]),
});
const models = [createModel(exactShapesWorld(32)), trained];
// a fresh profile store: each model calibrates itself on its first rows, as shipped, without
// drawing from (or leaving) a profile in the user's infodiff cache
const store = await Deno.makeTempDir({ prefix: "infodiff-localization-exact-" });
const lines: string[] = [];
/** each row's IoU of the information map at its model's best global threshold, by row id */
const rowIous: Map<string, number>[] = [];
for (const model of models) {
  const study = await localizationStudy(model, rows, {
    samples: Number(args.samples),
    seed: 0,
    logSnr: defaultLogSnrSampling({ min, max }),
    allowOutsideTrainedRange: true,
    methods: ["information", "whole-image"],
    loadImage: (row) => ({ pixels: pixels.get(row.image)! }),
    calibration: { store },
  });
  if (study.failures.length > 0) throw new Error(`${model.name}: ${study.failures[0].error}`);
  for (const method of ["information", "whole-image"] as const) {
    const s = study.method(method);
    lines.push(
      `| ${model.name} | ${method} | ${s.mIoU.toFixed(3)} ± ${s.se.toFixed(3)} | ${s.n} |`,
    );
  }
  const best = study.method("information");
  rowIous.push(
    new Map(
      study.rows.map((r) => [r.id, r.ious.information![r.thresholds.indexOf(best.threshold)]]),
    ),
  );
  console.error(`${model.name} done`);
}
// paired over the rows both models finished: exact − trained
const differences = [...rowIous[0]].flatMap(([id, iou]) =>
  rowIous[1].has(id) ? [iou - rowIous[1].get(id)!] : []
);
if (differences.some((d) => !Number.isFinite(d))) throw new Error("a row's IoU is missing");
const paired = meanWithError(differences);
console.log(
  `${rows.length} rows of ${scenes.length} held-out scenes of ${
    counts.join(" or ")
  } objects (the first ` +
    `${args.count} test scenes), ${args.samples} draws, α ∈ [${min}, ${max}]\n\n` +
    "| model | method | mIoU ± SE | rows |\n|---|---|---|---|\n" + lines.join("\n") +
    `\n\ninformation maps, exact world − ${trained.name}, paired over ${differences.length} ` +
    `rows: ${paired.mean.toFixed(3)} ± ${paired.se.toFixed(3)}`,
);
await trained.dispose();
await Deno.remove(store, { recursive: true });
