/**
 * {@link informationBars}: a bar chart of information estimates with their intervals (the
 * estimate's skew-corrected interval where a row has one, else ±2 standard errors).
 *
 * @module
 */
import * as Plot from "npm:@observablehq/plot@0.6.17";
import { InvalidArgumentError } from "../errors.ts";
import type { Chart } from "./chart.ts";
import { ERROR_BAR_DESCRIPTION, renderPlot, TITLE_MARGIN } from "./render.ts";

/** One bar of {@link informationBars}. */
export interface InformationBar {
  /** Bar label (e.g. a word of the prompt); labels must be distinct. */
  label: string;
  /** Estimate in nats. */
  nats: number;
  /** Standard error of the estimate (≥ 0), drawn as ±2·se unless the row has an interval. */
  se: number;
  /**
   * The estimate's ≈95 % interval (`estimate.interval`), drawn instead of ±2·se: with
   * right-skewed draws ±2·se covers only 70–93 % of the time (docs/performance.md).
   */
  interval?: { readonly low: number; readonly high: number };
}

/** Options of {@link informationBars}. */
export interface InformationBarsOptions {
  /** Title above the chart. */
  title?: string;
  /** Y axis label (default `"information (nats)"`). */
  yLabel?: string;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default 400). */
  height?: number;
  /** Bar colour (default `"steelblue"`). */
  fill?: string;
}

/**
 * Bar chart of estimates in nats with error bars (a row's interval, else ±2 SE); bars appear in
 * the order of `rows`. Negative estimates (possible for the standard pointwise MI) hang below zero.
 *
 * @throws {InvalidArgumentError} for no rows, repeated labels, non-finite values, negative SE or
 *   an interval that does not hold its estimate
 *
 * @example
 * ```ts
 * import { informationBars } from "./information-bars.ts";
 * const chart = informationBars([
 *   { label: "cat", nats: 1.2, se: 0.1 },
 *   { label: "sofa", nats: 0.4, se: 0.05 },
 * ], { title: "Conditional MI per word" });
 * console.assert(chart.svg.includes("sofa"));
 * ```
 */
export function informationBars(
  rows: readonly InformationBar[],
  options: InformationBarsOptions = {},
): Chart {
  validateRows(rows);
  const labels = rows.map((row) => row.label);
  const rotate = labels.length > 8 || labels.some((label) => label.length > 8);
  return renderPlot({
    width: options.width ?? 640,
    height: options.height ?? 400,
    marginTop: options.title ? TITLE_MARGIN : 20,
    marginLeft: 60,
    marginBottom: rotate ? 70 : 40,
    x: { domain: labels, label: null, tickRotate: rotate ? -35 : 0 },
    y: { label: options.yLabel ?? "information (nats)", grid: true, nice: true },
    marks: [
      Plot.barY(rows, { x: "label", y: "nats", fill: options.fill ?? "steelblue" }),
      Plot.ruleX(rows, {
        x: "label",
        y1: (row: InformationBar) => row.interval?.low ?? row.nats - 2 * row.se,
        y2: (row: InformationBar) => row.interval?.high ?? row.nats + 2 * row.se,
        stroke: "black",
        strokeWidth: 1.5,
        ariaDescription: ERROR_BAR_DESCRIPTION,
      }),
      Plot.ruleY([0]),
    ],
  }, options.title);
}

function validateRows(rows: readonly InformationBar[]): void {
  if (rows.length === 0) {
    throw new InvalidArgumentError("informationBars needs at least one row, got none");
  }
  const seen = new Set<string>();
  for (const [i, row] of rows.entries()) {
    if (seen.has(row.label)) {
      throw new InvalidArgumentError(
        `bar labels must be distinct, "${row.label}" appears twice (row ${i})`,
      );
    }
    seen.add(row.label);
    if (!Number.isFinite(row.nats) || !Number.isFinite(row.se) || row.se < 0) {
      throw new InvalidArgumentError(
        `row ${i} ("${row.label}") needs finite nats and se ≥ 0, got nats=${row.nats}, se=${row.se}`,
      );
    }
    const { low, high } = row.interval ?? { low: row.nats, high: row.nats };
    if (!(low <= row.nats && row.nats <= high)) {
      throw new InvalidArgumentError(
        `row ${i} ("${row.label}") needs an interval low ≤ nats ≤ high, got [${low}, ${high}] ` +
          `around ${row.nats}`,
      );
    }
  }
}
