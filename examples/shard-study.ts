/**
 * One shard of a localization study on the shapes world, as a cluster job runs it: the shard
 * comes from the scheduler (`--shard auto`: a Slurm job array or a Kubernetes Indexed Job) or is
 * given (`--shard 2/8`), and the shard's rows go to `<out>/shard-<i>-of-<n>.jsonl`, resumable.
 * Afterwards `infodiff merge <out>/shard-*.jsonl -o all.jsonl` joins them, without a model.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys \
 *     examples/shard-study.ts --shard auto --out results [--scenes 200] [--samples 100] [--oracle]
 *
 * `--oracle` uses the world's exact oracle instead of shapes-tiny (fast, for trying the setup).
 * For Stable Diffusion, replace the model and the rows (see notebooks/02-localization.ipynb).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  loadModel,
  localizationStudy,
  shapesLocalizationRows,
  shapesOracle,
  shapesWorld,
  shardFromEnvironment,
} from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shard: { type: "string", default: "auto" },
    "shard-count": { type: "string" },
    out: { type: "string", default: "results" },
    scenes: { type: "string", default: "200" },
    samples: { type: "string", default: "100" },
    oracle: { type: "boolean", default: false },
  },
});
const count = values["shard-count"] === undefined ? undefined : Number(values["shard-count"]);
const shard = shardFromEnvironment(values.shard!, Deno.env.toObject(), count);
const world = shapesWorld({ seed: 1, count: Number(values.scenes), split: "test" });
const model = values.oracle
  ? shapesOracle(world)
  : await loadModel(new URL("../fixtures/models/shapes-tiny", import.meta.url).pathname, {
    device: "auto",
  });
await Deno.mkdir(values.out!, { recursive: true });
const results = `${values.out}/shard-${shard.index}-of-${shard.count}.jsonl`;
const study = await localizationStudy(model, shapesLocalizationRows(world, { words: "colour" }), {
  samples: Number(values.samples),
  results,
  shard,
  loadImage: "pixels",
});
console.log(`shard ${shard.index}/${shard.count}: ${study.rows.length} rows in ${results}`);
console.log(study.toString());
await model.dispose();
