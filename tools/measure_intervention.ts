/**
 * Issue 5's intervention numbers on the shapes world: for held-out two-object scenes of the test
 * split, remove (or, with --swap, replace) the colour and the shape word of each object, and
 * correlate the change with the word's conditional information (image level and pixel level, with
 * bootstrap SEs). Resumable: results go to a JSON-lines file.
 *
 * Usage: npx -y deno@2.9.6 run -A tools/measure_intervention.ts [--model fixtures/models/shapes-tiny]
 *   [--scenes 12] [--steps 25] [--samples 64] [--swap] [--results out/intervention-tiny.jsonl]
 */
import { parseArgs } from "node:util";
import { COLOURS, SHAPES } from "../src/datasets/shapes/caption.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { loadModel } from "../src/query/load-model.ts";
import { formatProgress } from "../src/studies/runner.ts";
import { type InterventionItem, interventionStudy } from "../src/studies/intervention.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "fixtures/models/shapes-tiny" },
    scenes: { type: "string", default: "12" },
    steps: { type: "string", default: "25" },
    samples: { type: "string", default: "64" },
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
  steps: Number(values.steps),
  samples: Number(values.samples),
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
