/**
 * Benchmark: how much of a 10-word per-token query on the exact oracle is spent outside the model's
 * noise prediction (sampling, noising, reductions, bookkeeping). Target: under 10 %.
 *
 * @module
 */
import { exampleOracle } from "../src/query/oracles.ts";
import { estimateContrasts } from "../src/estimators/contrasts.ts";
import { resolveOptions } from "../src/estimators/options.ts";
import { perTokenPlan } from "../src/estimators/per-token.ts";

/** The 10-word prompt of the benchmark. */
export const BENCH_PROMPT = "a photo of a red circle on the left side today";

/**
 * Runs the benchmark and returns its measurements.
 *
 * @example
 * ```ts ignore
 * import { benchOracle } from "./oracle.ts";
 * console.log(await benchOracle());
 * ```
 */
export async function benchOracle(samples = 200): Promise<Record<string, number | string>> {
  const model = exampleOracle();
  const image = model.sample(BENCH_PROMPT, { seed: 1 });
  const { words, plan } = perTokenPlan(BENCH_PROMPT); // exactly what perToken() evaluates
  const options = resolveOptions(model, { samples });
  await estimateContrasts(model, image, plan, resolveOptions(model, { samples: 8 })); // warm-up
  const outcome = await estimateContrasts(model, image, plan, options);
  const { modelMs, totalMs, modelCalls } = outcome.timing;
  return {
    words: words.length,
    conditions: plan.prompts.length,
    samples,
    modelCalls,
    totalMs: Math.round(totalMs),
    modelMs: Math.round(modelMs),
    outsideModelShare: Number(((totalMs - modelMs) / totalMs).toFixed(3)),
  };
}

if (import.meta.main) console.log(JSON.stringify(await benchOracle(), null, 1));
