/**
 * The chart of a per-token result: one bar per word with its interval, repeated words told apart.
 *
 * @module
 */
import type { PerTokenResult } from "../estimators/results.ts";
import type { Chart } from "./chart.ts";
import { informationBars } from "./information-bars.ts";
import type { InformationBarsOptions } from "./information-bars.ts";

/**
 * Bar chart of every word's conditional information, in prompt order. A word that occurs more
 * than once gets its occurrence number ("a", "a (2)").
 *
 * @example
 * ```ts
 * import { perTokenChart } from "./per-token-chart.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const result = await model.info(model.sample(EXAMPLE_PROMPT)).given(EXAMPLE_PROMPT).samples(10).perToken();
 * console.assert(perTokenChart(result).svg.includes("circle"));
 * ```
 */
export function perTokenChart(result: PerTokenResult, options: InformationBarsOptions = {}): Chart {
  const seen = new Map<string, number>();
  const rows = result.tokens.filter((t) => !t.truncated).map((t) => {
    const count = (seen.get(t.word) ?? 0) + 1;
    seen.set(t.word, count);
    return {
      label: count === 1 ? t.word : `${t.word} (${count})`,
      nats: t.estimate.nats,
      se: t.estimate.se,
      ...(t.estimate.interval ? { interval: t.estimate.interval } : {}),
    };
  });
  const intervals = rows.every((row) => "interval" in row);
  return informationBars(rows, {
    title: `i(x; word | rest of "${result.prompt}")`,
    yLabel: `information (nats), ${intervals ? "95 % intervals" : "±2 SE"}`,
    ...options,
  });
}
