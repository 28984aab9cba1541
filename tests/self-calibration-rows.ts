// The rows of the self-calibration tests: relation items whose images are samples of a two-word
// mixture, with exact values. Run as a script it is one shard of such a study, as a cluster job
// runs it (the shard from a Slurm array's environment, the profile store from INFODIFF_CACHE):
//   deno run -A tests/self-calibration-rows.ts --out DIR --samples N --shard auto
import { parseArgs } from "node:util";
import { join } from "node:path";
import { mixtureModel } from "../src/query/oracles.ts";
import { relationStudy } from "../src/studies/relations.ts";
import { shardFromEnvironment } from "../src/studies/shard.ts";

/** Relation items whose images are samples of the two-word mixture, with exact values. */
export function mixtureItems(count: number) {
  const model = mixtureModel({
    shape: [2, 1, 2],
    components: [
      { words: ["red"], mean: [0.6, 0, 0.3, 0], variance: 0.25 },
      { words: ["blue"], mean: [0, 0.6, 0, 0.3], variance: 0.25 },
    ],
  });
  const images = new Map<string, Float32Array>();
  const items = Array.from({ length: count }, (_, i) => {
    const word = i % 2 ? "blue" : "red";
    images.set(`x${i}.png`, model.sample(word, { seed: 100 + i }));
    return {
      image: `x${i}.png`,
      options: [i % 2 ? "red" : "blue", word],
      trueIndex: 1,
      kind: "attribution" as const,
      group: word,
    };
  });
  const exact = (image: string, option: string) =>
    model.logDensity(images.get(image)!, option) - model.logDensity(images.get(image)!, "");
  const loadImage = (_: unknown, item: { image: string }) =>
    Promise.resolve(images.get(item.image)!);
  return { model, items, exact, loadImage };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string" },
      samples: { type: "string", default: "24" },
      shard: { type: "string", default: "auto" },
    },
  });
  const shard = shardFromEnvironment(values.shard!, Deno.env.toObject());
  const { model, items, loadImage } = mixtureItems(40);
  await Deno.mkdir(values.out!, { recursive: true });
  await relationStudy(model, items, {
    samples: Number(values.samples),
    estimator: "standard",
    logSnr: { loc: 1, scale: 2, clip: 5 },
    loadImage,
    shard,
    results: join(values.out!, `shard-${shard.index}-of-${shard.count}.jsonl`),
  });
}
