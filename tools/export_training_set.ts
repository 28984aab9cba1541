/**
 * Writes a shapes-world split in the flat format the training script reads:
 *   <out>/images.u8         raw uint8, N×size×size×3 (HWC, row-major, scene after scene)
 *   <out>/captions.json     JSON array of N captions (lower-case words, single spaces)
 *   <out>/vocabulary.json   JSON array of every word a caption can contain
 *   <out>/meta.json         { count, size, seed, split }
 *
 * Usage: npx -y deno@2.9.6 run -A tools/export_training_set.ts --out out/shapes-train --count 20000 --seed 1 [--split train] [--size 32]
 */
import { parseArgs } from "node:util";
import { type ShapesSplit, shapesWorld } from "../src/datasets/shapes/world.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string" },
    count: { type: "string", default: "20000" },
    seed: { type: "string", default: "1" },
    split: { type: "string", default: "train" },
    size: { type: "string", default: "32" },
  },
});
if (!values.out) throw new Error("--out <folder> is required");
const count = Number(values.count), seed = Number(values.seed), size = Number(values.size);
const split = values.split as ShapesSplit;

const world = shapesWorld({ seed, count, size, split });
const bytes = new Uint8Array(count * size * size * 3);
world.scenes.forEach((scene, i) => bytes.set(scene.rgb, i * size * size * 3));

await Deno.mkdir(values.out, { recursive: true });
await Deno.writeFile(`${values.out}/images.u8`, bytes);
await Deno.writeTextFile(
  `${values.out}/captions.json`,
  JSON.stringify(world.scenes.map((s) => s.caption)),
);
await Deno.writeTextFile(`${values.out}/vocabulary.json`, JSON.stringify(world.vocabulary));
await Deno.writeTextFile(
  `${values.out}/meta.json`,
  JSON.stringify({ count, size, seed, split }),
);
console.log(`wrote ${count} ${split} scenes (${bytes.length} bytes of pixels) to ${values.out}`);
