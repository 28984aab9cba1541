/**
 * Issue 5's intervention numbers on the shapes world: for held-out two-object scenes of the test
 * split, remove (or, with --swap, replace) the colour and the shape word of each object, and
 * correlate the change with the word's conditional information (image level and pixel level, with
 * bootstrap SEs). Resumable: results go to a JSON-lines file.
 *
 * Usage: npx -y deno@2.9.6 run -A tools/measure_intervention.ts [--model fixtures/models/shapes-tiny]
 *   [--scenes 12] [--sampler karras-heun|ddim] [--steps N] [--samples N] [--swap]
 *   [--results out/intervention-tiny.jsonl]
 * Without --sampler/--steps/--samples the study's defaults run: the reference's protocol
 * (Karras–Heun, 100 levels; 2,400 draws per condition).
 */
import { parseArgs } from "node:util";
import { COLOURS, SHAPES } from "../src/datasets/shapes/caption.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { loadModel } from "../src/query/load-model.ts";
import { formatProgress } from "../src/studies/runner.ts";
import {
  type InterventionItem,
  type InterventionSampler,
  interventionStudy,
} from "../src/studies/intervention.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "fixtures/models/shapes-tiny" },
    scenes: { type: "string", default: "12" },
    sampler: { type: "string" },
    steps: { type: "string" },
    samples: { type: "string" },
    swap: { type: "boolean", default: false },
    results: { type: "string" },
  },
});
const swap = values.swap;
const results = values.results ?? `out/intervention-${swap ? "swap" : "remove"}.jsonl`;
const scenes = shapesWorld({ seed: 1, split: "test", count: 400 }).scenes
  .filter((s) => s.objects.length === 2).slice(0, Number(values.scenes));
const items: InterventionItem[] = scenes.flatMap((scene) =>
  scene.objects.flatMap((object) => {
    const colour = COLOURS.find((c) => !scene.objects.some((o) => o.colour === c))!;
    const shape = SHAPES.find((s) => !scene.objects.some((o) => o.shape === s))!;
    return [
      { word: object.colour, replacement: swap ? colour : undefined },
      { word: object.shape, replacement: swap ? shape : undefined },
    ].map(({ word, replacement }) => ({
      image: scene.toData(),
      caption: scene.caption,
      word,
      ...(replacement ? { replacement } : {}),
    }));
  })
);
await Deno.mkdir("out", { recursive: true });
const model = await loadModel(values.model, { device: "cpu" });
const study = await interventionStudy(model, items, {
  sampler: values.sampler as InterventionSampler | undefined,
  steps: values.steps === undefined ? undefined : Number(values.steps),
  samples: values.samples === undefined ? undefined : Number(values.samples),
  results,
  onProgress: (p) => console.error(formatProgress(p)),
});
console.log(study.toString());
const changes = study.items.map((r) => r.change);
console.log(
  `change per item: median ${
    changes.sort((a, b) => a - b)[changes.length >> 1].toExponential(2)
  }, ` +
    `max ${Math.max(...changes).toExponential(2)} (Σ over 3·32·32 values)`,
);
await model.dispose();
