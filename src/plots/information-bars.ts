/**
 * {@link informationBars}: a bar chart of information estimates with ±2 standard-error bars.
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
  /** Standard error of the estimate (≥ 0), drawn as ±2·se. */
  se: number;
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
 * Bar chart of estimates in nats with ±2 SE error bars; bars appear in the order of `rows`.
 * Negative estimates (possible for the standard pointwise MI) hang below zero.
 *
 * @throws {InvalidArgumentError} for no rows, repeated labels, non-finite values or negative SE
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
        y1: (row: InformationBar) => row.nats - 2 * row.se,
        y2: (row: InformationBar) => row.nats + 2 * row.se,
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
  }
}
