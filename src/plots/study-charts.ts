/**
 * The studies' charts, as plain functions of their results (results never draw themselves).
 *
 * @module
 */
import type { LocalizationResult } from "../studies/localization-result.ts";
import type { RelationsResult } from "../studies/relations-result.ts";
import type { InterventionResult } from "../studies/intervention-result.ts";
import type { Accuracy } from "../studies/relations-result.ts";
import type { PidResult } from "../estimators/pid.ts";
import type { Chart } from "./chart.ts";
import { type GroupedBar, groupedBars, type GroupedBarsOptions } from "./grouped-bars.ts";
import { scatterPlot } from "./scatter-plot.ts";

const finite = (v: number): number | undefined => Number.isFinite(v) ? v : undefined;

/**
 * A grouped bar chart of mIoU per method, for the paper's protocol (best global threshold) and
 * the fixed threshold, with ±2 SE bars (available methods only).
 *
 * @example
 * ```ts
 * import { localizationChart } from "./study-charts.ts";
 * import { LocalizationResult } from "../studies/localization-result.ts";
 * const record = { image: "1.png", caption: "a red circle", word: "red", category: "circle",
 *   context: "a circle", nats: 1, se: 0.1, seed: 7, maskArea: 1, pixels: 4, thresholds: [0.2, 0.4],
 *   ious: { information: [0.5, 1], "whole-image": [0.25, 0.25] } };
 * const result = new LocalizationResult({
 *   run: { results: [{ id: "a", result: record }], failures: [], resumed: 0, total: 1 },
 *   methods: ["information", "whole-image"], thresholds: [0.2, 0.4], fixedThreshold: 0.4,
 *   unavailable: new Map(), maps: new Map(), samples: 10, model: "m",
 * });
 * console.assert(localizationChart(result).svg.includes("whole-image"));
 * ```
 */
export function localizationChart(
  result: LocalizationResult,
  options: GroupedBarsOptions = {},
): Chart {
  const bars: GroupedBar[] = result.summary.filter((s) => !s.unavailable && s.n > 0).flatMap((
    s,
  ) => [
    { group: "best global threshold", method: s.method, value: s.mIoU, se: finite(s.se) },
    {
      group: `threshold ${result.fixedThreshold}`,
      method: s.method,
      value: s.mIoUFixed,
      se: finite(s.seFixed),
    },
  ]);
  return groupedBars(bars, { yLabel: "mIoU", title: `localization (${result.model})`, ...options });
}

/**
 * Bar chart of relation/attribute accuracy (%) overall and per kind, ±2 SE; with `groups: true`
 * per relation / attribute pair instead (one chart each: the two share no bars).
 *
 * @example
 * ```ts
 * import { relationChart } from "./study-charts.ts";
 * import { RelationsResult } from "../studies/relations-result.ts";
 * const item = (correct: boolean) => ({ id: String(correct), result: { image: "1.png", trueIndex: 1, kind: "relation", group: "above",
 *   options: ["a", "b"], chosen: correct ? 1 : 0, correct, nats: [0, 1], se: [0, 0], refused: [], seed: 1 } });
 * const result = new RelationsResult({ results: [item(true), item(false)], failures: [], resumed: 0, total: 2 }, 10, "m");
 * console.assert(relationChart(result).svg.includes("accuracy"));
 * ```
 */
export function relationChart(
  result: RelationsResult,
  options: GroupedBarsOptions & { readonly groups?: boolean } = {},
): Chart {
  const { groups = false, ...chart } = options;
  const bar = (group: string) => (a: Accuracy): GroupedBar => ({
    group,
    method: a.name,
    value: 100 * a.accuracy,
    se: Number.isFinite(a.se) ? 100 * a.se : undefined,
  });
  const rows = groups
    ? result.byGroup.filter((a) => a.n > 0).map(bar("group"))
    : [result.accuracy, ...result.byKind].filter((a) => a.n > 0).map(bar("overall / kind"));
  return groupedBars(rows, {
    yLabel: "accuracy (%)",
    title: `relation / attribute test (${result.model})${groups ? ", per group" : ""}`,
    ...chart,
  });
}

/**
 * Scatter of each item's conditional information (x) against the change of its image (y).
 *
 * @example
 * ```ts
 * import { interventionScatter } from "./study-charts.ts";
 * import { InterventionResult } from "../studies/intervention-result.ts";
 * const row = (id: string, change: number, nats: number) => ({
 *   id, caption: "c", word: "w", edited: "c", context: "c", width: 2, height: 1, change,
 *   information: { nats, se: 0 }, changeMap: [change, 0], informationMap: [nats, 0],
 * });
 * const result = InterventionResult.fromRows("m", [row("a", 0, 0), row("b", 1, 2), row("c", 3, 5)],
 *   { failures: [], resumed: 0, total: 3, attentionRan: false });
 * console.assert(interventionScatter(result).svg.includes("Pearson r"));
 * ```
 */
export function interventionScatter(result: InterventionResult): Chart {
  return scatterPlot(
    result.items.map((r) => ({ x: r.information.nats, y: r.change })),
    {
      title: `Prompt intervention on ${result.model}`,
      xLabel: "i(x; word | rest of caption) (nats)",
      yLabel: "change Σ(edited − reconstruction)²",
    },
  );
}

/** The four PID terms a chart shows, in order. */
const PID_TERMS = ["redundancy", "uniqueA", "uniqueB", "synergy"] as const;

/**
 * Grouped bars of the image-level PID terms (redundancy min(I_A, I_B), unique A, unique B, synergy)
 * of several word pairs, ±2 bootstrap SE, in one form of the decomposition (default
 * "conditional"). The pixel level is in each term's map (`imageStrip`).
 *
 * @example
 * ```ts
 * import { pidChart } from "./study-charts.ts";
 * import { mixtureModel } from "../query/oracles.ts";
 * const m = mixtureModel({ shape: [1, 2, 2], components: [
 *   { words: ["sofa", "couch"], mean: [1, 0.5, 0, 0], variance: 0.2 },
 *   { words: ["chair"], mean: [0, 0, 1, 0.5], variance: 0.2 },
 * ] });
 * const r = await m.info(m.sample("sofa", { seed: 1 })).given("a sofa or couch").samples(16).pid("sofa", "couch");
 * console.assert(pidChart([{ label: "synonyms", result: r }], { form: "plain" }).svg.includes("synonyms"));
 * ```
 */
export function pidChart(
  pairs: readonly { readonly label: string; readonly result: PidResult }[],
  options: GroupedBarsOptions & { readonly form?: "plain" | "conditional" } = {},
): Chart {
  const { form = "conditional", ...chart } = options;
  const bars = pairs.flatMap(({ label, result }) =>
    PID_TERMS.map((term) => ({
      group: label,
      method: term,
      value: result[form][term].estimate.nats,
      se: finite(result[form][term].estimate.se),
    }))
  );
  return groupedBars(bars, {
    yLabel: "nats",
    title: `image-level PID terms (${form} form)`,
    ...chart,
  });
}
