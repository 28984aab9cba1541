/**
 * Writes a shapes-world split in the flat format the training script reads:
 *   <out>/images.u8         raw uint8, N×size×size×3 (HWC, row-major, scene after scene)
 *   <out>/captions.json     JSON array of N captions (lower-case words, single spaces)
 *   <out>/vocabulary.json   JSON array of every word a caption can contain
 *   <out>/meta.json         { count, size, seed, split } (and the training options below, if set)
 *
 * Training options (the test split's scenes never use them):
 *   --min-objects K         scenes of K…max objects (default 1)
 *   --max-objects K         at most K objects (default 3)
 *   --same-shape-share P    share of multi-object scenes whose first two objects share a shape
 *   --both-orders           each multi-object scene twice: its caption, then the caption that names
 *                           its second object first with the converse relation ("a blue square
 *                           right of a red circle" beside "a red circle left of a blue square");
 *                           N counts both rows
 *
 * Usage: npx -y deno@2.9.6 run -A tools/export_training_set.ts --out out/shapes-train --count 20000 --seed 1 [--split train] [--size 32]
 */
import { parseArgs } from "node:util";
import {
  relationBetween,
  shapesGeometry,
  type ShapesScene,
  type ShapesSplit,
  shapesWorld,
} from "../src/datasets/shapes/world.ts";
import { shapesCaption } from "../src/datasets/shapes/caption.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string" },
    count: { type: "string", default: "20000" },
    seed: { type: "string", default: "1" },
    split: { type: "string", default: "train" },
    size: { type: "string", default: "32" },
    "min-objects": { type: "string" },
    "max-objects": { type: "string" },
    "same-shape-share": { type: "string" },
    "both-orders": { type: "boolean", default: false },
  },
});
if (!values.out) throw new Error("--out <folder> is required");
const count = Number(values.count), seed = Number(values.seed), size = Number(values.size);
const split = values.split as ShapesSplit;
const training = {
  ...(values["min-objects"] ? { minObjects: Number(values["min-objects"]) } : {}),
  ...(values["max-objects"] ? { maxObjects: Number(values["max-objects"]) } : {}),
  ...(values["same-shape-share"] ? { sameShapeShare: Number(values["same-shape-share"]) } : {}),
  ...(values["both-orders"] ? { bothOrders: true } : {}),
};

const world = shapesWorld({ seed, count, size, split, ...training });
const margin = shapesGeometry(size).margin;

/** The caption naming the scene's second object first, with the relation that holds that way. */
function converseCaption(scene: ShapesScene): string {
  const [a, b, ...rest] = scene.objects;
  return shapesCaption([b, a, ...rest], relationBetween(b, a, margin));
}

const rows = world.scenes.flatMap((scene) =>
  training.bothOrders && scene.objects.length >= 2
    ? [{ scene, caption: scene.caption }, { scene, caption: converseCaption(scene) }]
    : [{ scene, caption: scene.caption }]
);
const bytes = new Uint8Array(rows.length * size * size * 3);
rows.forEach(({ scene }, i) => bytes.set(scene.rgb, i * size * size * 3));

await Deno.mkdir(values.out, { recursive: true });
await Deno.writeFile(`${values.out}/images.u8`, bytes);
await Deno.writeTextFile(`${values.out}/captions.json`, JSON.stringify(rows.map((r) => r.caption)));
await Deno.writeTextFile(`${values.out}/vocabulary.json`, JSON.stringify(world.vocabulary));
await Deno.writeTextFile(
  `${values.out}/meta.json`,
  JSON.stringify({
    count: rows.length,
    size,
    seed,
    split,
    ...(Object.keys(training).length ? { scenes: count, ...training } : {}),
  }),
);
console.log(
  `wrote ${rows.length} ${split} rows of ${count} scenes (${bytes.length} bytes of pixels) to ${values.out}`,
);
