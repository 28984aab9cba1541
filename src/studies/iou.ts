/**
 * Intersection over union of binary masks, and the paper's localization protocol: every map
 * min–max normalised on its own, thresholded at a set of candidate thresholds, and ONE global
 * threshold chosen as the one with the best mean IoU over the whole dataset.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Heatmap } from "../images/heatmap.ts";
import { meanWithError } from "../numerics/statistics.ts";

/**
 * Candidate global thresholds of the paper's protocol: the reference code's
 * `np.linspace(0.1, 0.5, 50)` (REFERENCE §12; the paper's text reads as if 0.1…0.5 in steps of 0.1).
 */
export const PAPER_THRESHOLDS: readonly number[] = Object.freeze(linspace(0.1, 0.5, 50));

/**
 * numpy's `linspace(start, stop, count)`: start + k·step with step = (stop − start)/(count − 1),
 * the last value exactly `stop`.
 *
 * @example
 * ```ts
 * import { linspace } from "./iou.ts";
 * console.assert(linspace(0.1, 0.5, 5).join() === "0.1,0.2,0.30000000000000004,0.4,0.5");
 * ```
 */
export function linspace(start: number, stop: number, count: number): number[] {
  if (!Number.isInteger(count) || count < 2) {
    throw new InvalidArgumentError(`linspace needs an integer count ≥ 2, got ${count}`);
  }
  const step = (stop - start) / (count - 1);
  return Array.from({ length: count }, (_, k) => (k === count - 1 ? stop : start + k * step));
}

/**
 * |A ∩ B| / |A ∪ B| of two binary masks of the same length (non-zero = inside). Two empty masks
 * have no union; their IoU is defined here as 1 (they agree perfectly).
 *
 * @throws {InvalidArgumentError} when the lengths differ
 *
 * @example
 * ```ts
 * import { iou } from "./iou.ts";
 * console.assert(iou(new Uint8Array([1, 1, 0, 0]), new Uint8Array([0, 1, 1, 0])) === 1 / 3);
 * ```
 */
export function iou(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (predicted.length !== truth.length) {
    throw new InvalidArgumentError(
      `IoU needs masks of the same size, got ${predicted.length} and ${truth.length} pixels`,
    );
  }
  let intersection = 0, union = 0;
  for (let i = 0; i < truth.length; i++) {
    const a = predicted[i] !== 0, b = truth[i] !== 0;
    if (a && b) intersection++;
    if (a || b) union++;
  }
  return union === 0 ? 1 : intersection / union;
}

/**
 * IoU of a map against a mask at each threshold, after min–max normalising the map (the map must
 * already have the mask's size). A constant map normalises to all zeros: thresholds > 0 then give
 * an empty prediction.
 *
 * @throws {InvalidArgumentError} when the map's pixel count differs from the mask's
 *
 * @example
 * ```ts
 * import { Heatmap } from "../images/heatmap.ts";
 * import { thresholdIous } from "./iou.ts";
 * const map = new Heatmap(4, 1, new Float32Array([0, 2, 6, 10]));
 * // normalised: 0, 0.2, 0.6, 1 → at 0.5 the prediction is the last two pixels
 * const ious = thresholdIous(map, new Uint8Array([0, 0, 1, 1]), [0.1, 0.5]);
 * console.assert(ious[0] === 2 / 3 && ious[1] === 1);
 * ```
 */
export function thresholdIous(
  map: Heatmap,
  mask: ArrayLike<number>,
  thresholds: readonly number[],
): number[] {
  if (map.width * map.height !== mask.length) {
    throw new InvalidArgumentError(
      `map is ${map.width}×${map.height} but the mask has ${mask.length} pixels; upsample the map ` +
        `to the mask size first`,
    );
  }
  const normalised = map.normalize();
  return thresholds.map((t) => iou(normalised.threshold(t), mask));
}

/** The best global threshold of {@link selectGlobalThreshold}. */
export interface GlobalThreshold {
  /** the chosen threshold */
  readonly threshold: number;
  /** its index in the candidate list */
  readonly index: number;
  /** mean IoU over all rows at that threshold */
  readonly mIoU: number;
  /** standard error of that mean (rows as independent samples) */
  readonly se: number;
  /** mean IoU at every candidate threshold, in candidate order */
  readonly byThreshold: readonly number[];
}

/**
 * Picks the ONE threshold with the highest mean IoU over all rows (the paper's protocol); ties go
 * to the first candidate. `rows[i][j]` is row i's IoU at `thresholds[j]`. Choosing the best of a
 * few thresholds on the evaluation data itself biases the mIoU slightly upwards, as in the paper.
 *
 * @throws {InvalidArgumentError} for no rows or rows of the wrong length
 *
 * @example
 * ```ts
 * import { selectGlobalThreshold } from "./iou.ts";
 * const best = selectGlobalThreshold([[0.2, 0.6], [0.4, 0.2]], [0.3, 0.4]);
 * console.assert(best.threshold === 0.4 && Math.abs(best.mIoU - 0.4) < 1e-12);
 * ```
 */
export function selectGlobalThreshold(
  rows: readonly (readonly number[])[],
  thresholds: readonly number[],
): GlobalThreshold {
  if (rows.length === 0) {
    throw new InvalidArgumentError("selecting a global threshold needs at least one row, got none");
  }
  const bad = rows.findIndex((r) => r.length !== thresholds.length);
  if (bad >= 0) {
    throw new InvalidArgumentError(
      `row ${bad} has ${rows[bad].length} IoUs; expected one per threshold (${thresholds.length})`,
    );
  }
  const byThreshold = thresholds.map((_, j) => meanWithError(rows.map((r) => r[j])).mean);
  let index = 0;
  byThreshold.forEach((m, j) => {
    if (m > byThreshold[index]) index = j;
  });
  return {
    threshold: thresholds[index],
    index,
    mIoU: byThreshold[index],
    se: meanWithError(rows.map((r) => r[index])).se,
    byThreshold,
  };
}
