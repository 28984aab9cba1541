/**
 * Small helpers for the study results' `fromJSON`: JSON writes NaN (an unavailable statistic) as
 * null, and reading it back must give NaN again, not 0 or null.
 *
 * @module
 */

/**
 * A number read from JSON: null (how JSON wrote NaN) becomes NaN.
 *
 * @example
 * ```ts
 * import { finiteOrNaN } from "./result-json.ts";
 * console.assert(Number.isNaN(finiteOrNaN(null)) && finiteOrNaN(2) === 2);
 * ```
 */
export function finiteOrNaN(value: number | null | undefined): number {
  return typeof value === "number" ? value : NaN;
}
