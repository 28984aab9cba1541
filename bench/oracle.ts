/**
 * Benchmark: how much of a 10-word per-token query on the exact oracle is spent outside the model's
 * noise prediction (sampling, noising, reductions, bookkeeping). Target: under 10 %.
 *
 * @module
 */
import { exampleOracle } from "../src/models/example.ts";
import { estimateContrasts } from "../src/estimators/contrasts.ts";
import { resolveOptions } from "../src/estimators/options.ts";
import { promptWords, removeWord } from "../src/models/prompt.ts";

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
  const words = promptWords(BENCH_PROMPT);
  const prompts = [BENCH_PROMPT, ""];
  const contexts = words.map((w, i) =>
    removeWord(BENCH_PROMPT, w.word, {
      occurrence: words.slice(0, i).filter((v) => v.word === w.word).length,
    })
  );
  for (const c of contexts) if (!prompts.includes(c)) prompts.push(c);
  const plan = {
    prompts,
    contrasts: [
      { with: 0, without: 1 },
      ...contexts.map((c) => ({ with: 0, without: prompts.indexOf(c) })),
    ],
  };
  const options = resolveOptions(model, { samples });
  await estimateContrasts(model, image, plan, resolveOptions(model, { samples: 8 })); // warm-up
  const outcome = await estimateContrasts(model, image, plan, options);
  const { modelMs, totalMs, modelCalls } = outcome.timing;
  return {
    words: words.length,
    conditions: prompts.length,
    samples,
    modelCalls,
    totalMs: Math.round(totalMs),
    modelMs: Math.round(modelMs),
    outsideModelShare: Number(((totalMs - modelMs) / totalMs).toFixed(3)),
  };
}

if (import.meta.main) console.log(JSON.stringify(await benchOracle(), null, 1));
