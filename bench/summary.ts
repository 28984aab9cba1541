/**
 * Summaries of repeated benchmark measurements.
 *
 * @module
 */

/**
 * The median of the values (the mean of the middle two for an even count).
 *
 * @example
 * ```ts
 * import { median } from "./summary.ts";
 * console.assert(median([3, 1, 2]) === 2 && median([4, 1, 2, 3]) === 2.5);
 * ```
 */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b), n = sorted.length;
  return (sorted[Math.floor((n - 1) / 2)] + sorted[Math.ceil((n - 1) / 2)]) / 2;
}
