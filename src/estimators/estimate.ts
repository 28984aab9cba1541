/**
 * The scalar result every estimator returns: a value in nats with its standard error.
 *
 * @module
 */

import { JUPYTER_DISPLAY } from "../jupyter.ts";
import type { Provenance } from "./provenance.ts";
import type { Interval } from "../numerics/statistics.ts";

/**
 * An estimate in nats with its standard error and the number of noise draws behind it.
 *
 * @example
 * ```ts
 * import { Estimate } from "./estimate.ts";
 * const e = new Estimate(0.5, 0.05, 100);
 * console.assert(e.toString() === "0.5000 ± 0.0500 nats (n=100)");
 * console.assert(JSON.stringify(e) === '{"nats":0.5,"se":0.05,"samples":100}');
 * ```
 */
export class Estimate {
  /** How the result was made, when it came from a query (see `withProvenance`). */
  declare readonly provenance?: Provenance;

  /**
   * Why the estimate has no standard error (too few independent draws for one); absent when it
   * has one. `se` is then NaN and there is no interval: an error bar is never made up.
   */
  declare readonly noStandardError?: string;

  /**
   * An estimate whose draws give no standard error, saying why (see `missingErrorReason`).
   *
   * @example
   * ```ts
   * import { Estimate } from "./estimate.ts";
   * const e = Estimate.withoutError(0.5, 2, "2 draws are 1 independent unit");
   * console.assert(Number.isNaN(e.se) && e.interval === undefined);
   * console.assert(e.toString() === "0.5000 nats, no standard error (n=2: 2 draws are 1 independent unit)");
   * console.assert(JSON.stringify(e) === '{"nats":0.5,"se":null,"samples":2,"noStandardError":"2 draws are 1 independent unit"}');
   * ```
   */
  static withoutError(nats: number, samples: number, reason: string): Estimate {
    const estimate = new Estimate(nats, NaN, samples);
    Object.defineProperty(estimate, "noStandardError", { value: reason, enumerable: true });
    return estimate;
  }

  /**
   * Creates the result.
   * @param nats the estimate, in nats
   * @param se its standard error, in nats
   * @param samples the number of noise draws
   * @param interval a ≈95 % interval that allows for the estimate's skew (see
   *   `skewCorrectedInterval`); the ±2·SE interval under-covers for heavy-tailed draws (docs/performance.md)
   */
  constructor(
    readonly nats: number,
    readonly se: number,
    readonly samples: number,
    readonly interval?: Interval,
  ) {}

  /** The estimate in bits. */
  get bits(): number {
    return this.nats / Math.LN2;
  }

  /** The standard error in bits. */
  get seBits(): number {
    return this.se / Math.LN2;
  }

  /** Plain data: `{ nats, se, samples }` (`se` null and `noStandardError` when it has none). */
  toJSON(): {
    nats: number;
    se: number;
    samples: number;
    interval?: Interval;
    noStandardError?: string;
    provenance?: Provenance;
  } {
    const plain = {
      nats: this.nats,
      se: this.se,
      samples: this.samples,
      ...(this.interval ? { interval: this.interval } : {}),
      ...(this.noStandardError ? { noStandardError: this.noStandardError } : {}),
    };
    return this.provenance ? { ...plain, provenance: this.provenance } : plain;
  }

  /**
   * `± 0.0311` at `digits` decimals, or `(no SE)` when the estimate has none (never `± NaN`).
   *
   * @example
   * ```ts
   * import { Estimate } from "./estimate.ts";
   * console.assert(new Estimate(0.5, 0.05, 100).seText(3) === "± 0.050");
   * console.assert(Estimate.withoutError(0.5, 2, "too few").seText() === "(no SE)");
   * ```
   */
  seText(digits = 4): string {
    return this.noStandardError ? "(no SE)" : `± ${this.se.toFixed(digits)}`;
  }

  /** `0.5123 ± 0.0311 nats (n=100)`, with `, 95 % [0.46, 0.59]` when it has an interval */
  toString(): string {
    if (this.noStandardError) {
      return `${
        this.nats.toFixed(4)
      } nats, no standard error (n=${this.samples}: ${this.noStandardError})`;
    }
    const interval = this.interval
      ? `, 95 % [${this.interval.low.toFixed(4)}, ${this.interval.high.toFixed(4)}]`
      : "";
    return `${this.nats.toFixed(4)} ± ${this.se.toFixed(4)} nats (n=${this.samples}${interval})`;
  }

  /** Shows the estimate as text in Jupyter. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}
