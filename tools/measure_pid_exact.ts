/**
 * The conditional PID that a perfect model of the shapes world gives `measure_pid`'s word pairs:
 * the colour and the shape of the same object against the colour of one object and the shape of
 * the other, in held-out two-object scenes, on the exact world of tools/exact_shapes_world.ts
 * (p(x | caption) of the world's generator; a removed word leaves its attribute open).
 *
 * The conditional form as `partialInformation` computes it, with the minimum redundancy: c = the
 * caption without both words, I_A = i(x; A | c) (caption without B against c), I_B likewise, I_AB
 * = i(x; A, B | c); R = min(I_A, I_B), U_A = I_A − R, U_B = I_B − R, S = I_AB − I_A − I_B + R, each
 * scene's point values averaged over scenes (as `measure_pid` averages them), with the paired
 * difference of the two pairs' redundancy. The plain form needs p(x | "red") over scenes of any
 * number of objects, which the exact world does not sum, so only the conditional form is here.
 *
 *   npx -y deno@2.9.6 run -A tools/measure_pid_exact.ts [--count 40] [--samples 256]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { contrastPlan, estimateContrasts } from "../src/estimators/contrasts.ts";
import { resolveOptions } from "../src/estimators/options.ts";
import { pidPlan } from "../src/estimators/pid.ts";
import { meanWithError } from "../src/numerics/statistics.ts";
import { defaultLogSnrSampling } from "../src/numerics/log-snr.ts";
import { exactShapesWorld } from "./exact_shapes_world.ts";

const { values: args } = parseArgs({
  options: {
    count: { type: "string", default: "40" },
    samples: { type: "string", default: "256" },
    range: { type: "string", default: "-6.18,6.18" },
  },
});
const [min, max] = args.range!.split(",").map(Number);
const exact = exactShapesWorld(32);
// the scenes and pairs of measure_pid: the two-object scenes among the first `count` test scenes
const scenes = shapesWorld({ seed: 1, count: Number(args.count), split: "test" }).scenes
  .filter((s) => s.objects.length === 2);
const terms = ["redundancy", "uniqueA", "uniqueB", "synergy"] as const;
type Terms = Record<(typeof terms)[number], number>;
const results: Record<"same" | "different", Terms[]> = { same: [], different: [] };
for (const scene of scenes) {
  const [first, second] = scene.objects;
  const pairs = { same: [first.colour, first.shape], different: [first.colour, second.shape] };
  for (const [kind, [a, b]] of Object.entries(pairs) as ["same" | "different", string[]][]) {
    // the conditional form's I_A, I_B and I_AB, as partialInformation builds them
    const plan = contrastPlan(pidPlan(scene.caption, a, b).forms.conditional.base);
    const options = resolveOptions(exact, {
      samples: Number(args.samples),
      seed: scene.id,
      logSnr: defaultLogSnrSampling({ min, max }),
    });
    const outcome = await estimateContrasts(exact, scene.toData(), plan, options);
    const [ia, ib, iab] = outcome.contrasts.map((c) => c.estimate.nats);
    const r = Math.min(ia, ib);
    results[kind].push({
      redundancy: r,
      uniqueA: ia - r,
      uniqueB: ib - r,
      synergy: iab - ia - ib + r,
    });
  }
  console.error(`${scene.id}: ${scene.caption}`);
}
const cell = (values: number[]) => {
  const m = meanWithError(values);
  return `${m.mean.toFixed(2)} ± ${m.se.toFixed(2)}`;
};
console.log(
  `exact shapes world, conditional form, ${args.samples} draws, α ∈ [${min}, ${max}], mean ± SE ` +
    `over ${scenes.length} held-out two-object scenes\n\n` +
    "| pair | redundancy | unique colour | unique shape | synergy |\n|---|---|---|---|---|\n" +
    (["same", "different"] as const).map((kind) =>
      `| ${kind} object | ${terms.map((t) => cell(results[kind].map((r) => r[t]))).join(" | ")} |`
    ).join("\n") +
    `\n\nredundancy, same − different, paired: ${
      cell(results.same.map((r, i) => r.redundancy - results.different[i].redundancy))
    } nats`,
);
