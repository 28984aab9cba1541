/**
 * {@link scatterPlot}: points with a least-squares line and the Pearson correlation in the title.
 *
 * @module
 */
import * as Plot from "npm:@observablehq/plot@0.6.17";
import { InvalidArgumentError } from "../errors.ts";
import { pearson } from "../numerics/statistics.ts";
import type { Chart } from "./chart.ts";
import { renderPlot, TITLE_MARGIN } from "./render.ts";

/** One point of {@link scatterPlot}. */
export interface ScatterPoint {
  /** Horizontal value. */
  x: number;
  /** Vertical value. */
  y: number;
  /** Optional text drawn next to the point. */
  label?: string;
}

/** Options of {@link scatterPlot}. */
export interface ScatterPlotOptions {
  /** Title; `Pearson r = …, n = …` is appended. */
  title?: string;
  /** X axis label. */
  xLabel?: string;
  /** Y axis label. */
  yLabel?: string;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default 420). */
  height?: number;
}

/**
 * Scatter plot with the ordinary least-squares line y = a + b·x and Pearson's r (3 decimals) in
 * the title.
 *
 * @throws {InvalidArgumentError} for fewer than 2 points, non-finite values, or x or y constant
 *   (no line or correlation is defined)
 *
 * @example
 * ```ts
 * import { scatterPlot } from "./scatter-plot.ts";
 * const chart = scatterPlot(
 *   [{ x: 1, y: 2 }, { x: 2, y: 4.1 }, { x: 3, y: 5.9, label: "c" }],
 *   { xLabel: "MI (nats)", yLabel: "mIoU" },
 * );
 * console.assert(chart.svg.includes("Pearson r = 0.999"));
 * ```
 */
export function scatterPlot(
  points: readonly ScatterPoint[],
  options: ScatterPlotOptions = {},
): Chart {
  validatePoints(points);
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const r = pearson(xs, ys);
  const { intercept, slope } = leastSquares(xs, ys);
  const xMin = Math.min(...xs), xMax = Math.max(...xs);
  const line = [
    { x: xMin, y: intercept + slope * xMin },
    { x: xMax, y: intercept + slope * xMax },
  ];
  const summary = `Pearson r = ${r.toFixed(3)}, n = ${points.length}`;
  const labelled = points.filter((p) => p.label !== undefined);
  return renderPlot({
    width: options.width ?? 640,
    height: options.height ?? 420,
    marginTop: TITLE_MARGIN,
    marginLeft: 60,
    marginBottom: 45,
    x: { label: options.xLabel ?? "x", nice: true },
    y: { label: options.yLabel ?? "y", nice: true, grid: true },
    marks: [
      Plot.line(line, { x: "x", y: "y", stroke: "firebrick", strokeWidth: 1.5 }),
      Plot.dot(points, { x: "x", y: "y", fill: "steelblue", r: 3.5 }),
      Plot.text(labelled, { x: "x", y: "y", text: "label", dx: 6, textAnchor: "start" }),
    ],
  }, options.title ? `${options.title} (${summary})` : summary);
}

function validatePoints(points: readonly ScatterPoint[]): void {
  if (points.length < 2) {
    throw new InvalidArgumentError(`scatterPlot needs at least 2 points, got ${points.length}`);
  }
  for (const [i, p] of points.entries()) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) {
      throw new InvalidArgumentError(`point ${i} must have finite x and y, got (${p.x}, ${p.y})`);
    }
  }
  for (const axis of ["x", "y"] as const) {
    if (points.every((p) => p[axis] === points[0][axis])) {
      throw new InvalidArgumentError(
        `all points have ${axis} = ${points[0][axis]}: no fitted line or correlation is defined`,
      );
    }
  }
}

/** Ordinary least squares of y on x. */
function leastSquares(xs: number[], ys: number[]): { intercept: number; slope: number } {
  const n = xs.length;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const slope = sxy / sxx;
  return { intercept: my - slope * mx, slope };
}
