/**
 * Issue 5's intervention numbers on the shapes world: for held-out two-object scenes of the test
 * split, remove (or, with --swap, replace) the colour and the shape word of each object, and with
 * --relations also the scene's relation word ("left", "right", "above", "below"; a swap puts its
 * opposite), and correlate the change with the word's conditional information (image level and
 * pixel level, with bootstrap SEs). Prints each kind of word's mean information and change.
 * Resumable: results go to a JSON-lines file. Images go in as `{ pixels }` (a flow model's data
 * and pixels have the same length, so a bare array would be ambiguous).
 *
 * Usage: npx -y deno@2.9.6 run -A tools/measure_intervention.ts [--model fixtures/models/shapes-tiny]
 *   [--scenes 12] [--relations] [--sampler karras-heun|ddim|flow-heun|flow-euler] [--steps N]
 *   [--samples N] [--swap] [--max-sequence-length N] [--results out/intervention-tiny.jsonl]
 * Without --sampler/--steps/--samples the study's defaults run: the reference's protocol
 * (Karras–Heun, 100 levels, or on a flow model its flow ODE with Heun's steps; 2,400 draws per
 * condition). shapes-flow needs --max-sequence-length 16 (its T5's trained length).
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
    relations: { type: "boolean", default: false },
    "max-sequence-length": { type: "string" },
    results: { type: "string" },
  },
});
const swap = values.swap;
const results = values.results ?? `out/intervention-${swap ? "swap" : "remove"}.jsonl`;
const scenes = shapesWorld({ seed: 1, split: "test", count: 400 }).scenes
  .filter((s) => s.objects.length === 2).slice(0, Number(values.scenes));
/** A relation's first word and the first word of its opposite ("left of" → "left", "right"). */
const OPPOSITE: Record<string, string> = {
  left: "right",
  right: "left",
  above: "below",
  below: "above",
};
const items: InterventionItem[] = scenes.flatMap((scene) => {
  const image = { pixels: scene.toData() };
  const words: { word: string; swap: string }[] = scene.objects.flatMap((object) => {
    const colour = COLOURS.find((c) => !scene.objects.some((o) => o.colour === c))!;
    const shape = SHAPES.find((s) => !scene.objects.some((o) => o.shape === s))!;
    return [{ word: object.colour, swap: colour }, { word: object.shape, swap: shape }];
  });
  if (values.relations && scene.relation !== undefined) {
    const word = scene.relation.split(" ")[0];
    words.push({ word, swap: OPPOSITE[word] });
  }
  return words.map(({ word, swap: replacement }) => ({
    image,
    caption: scene.caption,
    word,
    ...(swap ? { replacement } : {}),
  }));
});
await Deno.mkdir("out", { recursive: true });
const model = await loadModel(values.model, {
  device: "cpu",
  maxSequenceLength: values["max-sequence-length"] === undefined
    ? undefined
    : Number(values["max-sequence-length"]),
});
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
const kinds: [string, readonly string[]][] = [
  ["colour", COLOURS],
  ["shape", SHAPES],
  ["relation", Object.keys(OPPOSITE)],
];
for (const [kind, vocabulary] of kinds) {
  const rows = study.items.filter((r) => vocabulary.includes(r.word));
  if (rows.length === 0) continue;
  const mean = (f: (r: (typeof rows)[number]) => number) =>
    rows.reduce((sum, r) => sum + f(r), 0) / rows.length;
  console.log(
    `${kind} words (${rows.length}): information ${mean((r) => r.information.nats).toFixed(2)} ` +
      `nats, change ${mean((r) => r.change).toExponential(2)} (means over items)`,
  );
}
await model.dispose();
