/**
 * PID terms on the shapes world for word pairs with known structure: the colour and the shape of
 * the SAME object (they name one thing: redundancy expected) against the colour of one object and
 * the shape of the OTHER (they name different things: unique parts expected). Conditional form
 * (given the rest of the caption), averaged over held-out two-object scenes, for shapes-tiny,
 * shapes-flow and the exact oracle of the same scenes; with the paired difference of the two
 * pairs' redundancy, scene by scene. Results go through the study runner (resumable). A model
 * without a profile (shapes-flow) calibrates itself on its first rows into a fresh store, so a
 * rerun repeats the figures instead of drawing from a profile an earlier run left in the cache.
 *
 *   npx -y deno@2.9.6 run -A tools/measure_pid.ts --count 40 --samples 32 \
 *     [--models shapes-tiny,shapes-flow,oracle] [--shapes-flow DIR]
 *
 * --shapes-flow takes another export of shapes-flow (a checkpoint under test) for its folder.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { shapesOracle } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import type { Model } from "../src/query/model.ts";
import { pidStudy } from "../src/studies/pid-study.ts";
import type { PidRow } from "../src/studies/pid-study.ts";
import { meanWithError } from "../src/numerics/statistics.ts";

const { values: args } = parseArgs({
  options: {
    count: { type: "string", default: "40" },
    samples: { type: "string", default: "32" },
    out: { type: "string", default: "out/measure/pid" },
    models: { type: "string", default: "shapes-tiny,shapes-flow,oracle" },
    "shapes-flow": { type: "string", default: "fixtures/models/shapes-flow" },
  },
});
const world = shapesWorld({ seed: 1, count: Number(args.count), split: "test" });
const scenes = world.scenes.filter((s) => s.objects.length === 2);
const rows: PidRow[] = scenes.flatMap((s) => [
  {
    id: `${s.id}-same`,
    image: { pixels: s.toData() }, // shapes-flow's exact latent is as long as the pixels
    prompt: s.caption,
    wordA: s.objects[0].colour,
    wordB: s.objects[0].shape,
  },
  {
    id: `${s.id}-different`,
    image: { pixels: s.toData() },
    prompt: s.caption,
    wordA: s.objects[0].colour,
    wordB: s.objects[1].shape,
  },
]);
const terms = ["redundancy", "uniqueA", "uniqueB", "synergy"] as const;
const known: Record<string, [string, () => Promise<Model>]> = {
  "shapes-tiny": [
    "shapes-tiny",
    () => loadModel("fixtures/models/shapes-tiny", { device: "cpu" }),
  ],
  "shapes-flow": [
    "shapes-flow",
    () => loadModel(args["shapes-flow"]!, { device: "cpu", maxSequenceLength: 16 }),
  ],
  oracle: [
    `exact oracle (${world.scenes.length} test scenes)`,
    () => Promise.resolve(shapesOracle(world)),
  ],
};
const models = args.models!.split(",").map((name) => {
  if (!known[name]) throw new Error(`--models takes ${Object.keys(known).join(", ")}; got ${name}`);
  return known[name];
});
await Deno.mkdir(args.out!, { recursive: true });
const store = await Deno.makeTempDir({ prefix: "measure-pid-profiles-" });
const lines = [
  `PID of colour and shape words (nats, mean ± SE over ${scenes.length} held-out two-object scenes, ${args.samples} draws each)`,
  "",
  "| model | form | pair | redundancy | unique colour | unique shape | synergy |",
  "|---|---|---|---|---|---|---|",
];
for (const [name, load] of models) {
  const model = await load();
  const study = await pidStudy(model, rows, {
    samples: Number(args.samples),
    results: `${args.out}/${name.split(" ")[0]}.jsonl`,
    calibration: { store },
    onProgress: (p) => p.done % 10 === 0 && console.error(`${name}: ${p.done}/${p.total} rows`),
  });
  for (const form of ["conditional", "plain"] as const) {
    for (const pair of ["same", "different"]) {
      const chosen = study.rows.filter((r) => r.id.endsWith(`-${pair}`));
      const cells = terms.map((t) => {
        const m = meanWithError(chosen.map((r) => r[form][t].nats));
        return `${m.mean.toFixed(3)} ± ${m.se.toFixed(3)}`;
      });
      lines.push(
        `| ${name} | ${form} | ${pair} object (${chosen.length}) | ${cells.join(" | ")} |`,
      );
    }
  }
  // the pairs of one scene share its image and caption: their difference, scene by scene
  const redundancy = new Map(study.rows.map((r) => [r.id, r.conditional.redundancy.nats]));
  const paired = scenes.filter((s) =>
    redundancy.has(`${s.id}-same`) && redundancy.has(`${s.id}-different`)
  )
    .map((s) => redundancy.get(`${s.id}-same`)! - redundancy.get(`${s.id}-different`)!);
  const d = meanWithError(paired);
  lines.push(
    `| ${name} | conditional | redundancy, same − different, paired (${paired.length}) | ` +
      `${d.mean.toFixed(3)} ± ${d.se.toFixed(3)} | | | |`,
  );
  if (study.failures.length) lines.push(`| ${name} | ${study.failures.length} bad rows | | | | |`);
  await model.dispose();
}
await Deno.remove(store, { recursive: true });
console.log(lines.join("\n"));
await Deno.writeTextFile(`${args.out}/pid.md`, lines.join("\n") + "\n");
