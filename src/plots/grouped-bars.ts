/**
 * {@link groupedBars}: bars of several methods side by side within each group (e.g. mIoU per
 * method per object category).
 *
 * @module
 */
import * as Plot from "npm:@observablehq/plot@0.6.17";
import { InvalidArgumentError } from "../errors.ts";
import type { Chart } from "./chart.ts";
import { ERROR_BAR_DESCRIPTION, renderPlot, TITLE_MARGIN } from "./render.ts";

/** One bar of {@link groupedBars}. */
export interface GroupedBar {
  /** Group (facet) the bar belongs to, e.g. a dataset split or category. */
  group: string;
  /** Method compared, e.g. `"conditional MI"` or `"DAAM"`. */
  method: string;
  /** Value (mIoU, accuracy, nats …). */
  value: number;
  /** Optional standard error, drawn as ±2·se. */
  se?: number;
}

/** Options of {@link groupedBars}. */
export interface GroupedBarsOptions {
  /** Title above the chart. */
  title?: string;
  /** Y axis label (default `"value"`). */
  yLabel?: string;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default 400). */
  height?: number;
}

/**
 * Grouped bar chart: one panel per group (in first-seen order) with one bar per method (in
 * first-seen order, one colour each; method names label the bars, so no legend is needed).
 * Rows with `se` get ±2 SE error bars.
 *
 * @throws {InvalidArgumentError} for no rows, a repeated (group, method) pair, a non-finite value
 *   or a negative/non-finite se
 *
 * @example
 * ```ts
 * import { groupedBars } from "./grouped-bars.ts";
 * const chart = groupedBars([
 *   { group: "COCO", method: "MI", value: 0.41, se: 0.02 },
 *   { group: "COCO", method: "DAAM", value: 0.35 },
 * ], { yLabel: "mIoU" });
 * console.assert(chart.svg.includes("DAAM"));
 * ```
 */
export function groupedBars(
  rows: readonly GroupedBar[],
  options: GroupedBarsOptions = {},
): Chart {
  validateRows(rows);
  const groups = [...new Set(rows.map((row) => row.group))];
  const methods = [...new Set(rows.map((row) => row.method))];
  const withError = rows.filter((row) => row.se !== undefined);
  const longest = Math.max(...methods.map((m) => m.length));
  const rotate = methods.length * groups.length > 8 || longest > 10;
  return renderPlot({
    width: options.width ?? 640,
    height: options.height ?? 400,
    // the group names sit in the top margin, below the title
    marginTop: options.title ? TITLE_MARGIN + 15 : 30,
    marginLeft: 60,
    // rotated labels need the room their length takes at −35° (about 6 px a character)
    marginBottom: rotate
      ? Math.max(70, Math.ceil(longest * 6 * Math.sin(Math.PI * 35 / 180)) + 24)
      : 40,
    fx: { domain: groups, label: null, padding: 0.1 },
    x: { domain: methods, label: null, tickRotate: rotate ? -35 : 0 },
    y: { label: options.yLabel ?? "value", grid: true, nice: true },
    color: { domain: methods, scheme: "tableau10" },
    marks: [
      Plot.barY(rows, { fx: "group", x: "method", y: "value", fill: "method" }),
      Plot.ruleX(withError, {
        fx: "group",
        x: "method",
        y1: (row: GroupedBar) => row.value - 2 * (row.se ?? 0),
        y2: (row: GroupedBar) => row.value + 2 * (row.se ?? 0),
        stroke: "black",
        strokeWidth: 1.5,
        ariaDescription: ERROR_BAR_DESCRIPTION,
      }),
      Plot.ruleY([0]),
    ],
  }, options.title);
}

function validateRows(rows: readonly GroupedBar[]): void {
  if (rows.length === 0) {
    throw new InvalidArgumentError("groupedBars needs at least one row, got none");
  }
  const seen = new Set<string>();
  for (const [i, row] of rows.entries()) {
    const key = JSON.stringify([row.group, row.method]);
    if (seen.has(key)) {
      throw new InvalidArgumentError(
        `row ${i} repeats group "${row.group}" and method "${row.method}"; each pair must be unique`,
      );
    }
    seen.add(key);
    if (!Number.isFinite(row.value)) {
      throw new InvalidArgumentError(`row ${i} needs a finite value, got ${row.value}`);
    }
    if (row.se !== undefined && !(Number.isFinite(row.se) && row.se >= 0)) {
      throw new InvalidArgumentError(`row ${i} has se = ${row.se}, expected a finite se ≥ 0`);
    }
  }
}
