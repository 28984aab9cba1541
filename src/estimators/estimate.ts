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
   * Creates the result.
   * @param nats the estimate, in nats
   * @param se its standard error, in nats
   * @param samples the number of noise draws
   * @param interval a ≈95 % interval that allows for the estimate's skew (see
   *   `skewCorrectedInterval`); the ±2·SE interval under-covers for heavy-tailed draws (README)
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

  /** Plain data: `{ nats, se, samples }`. */
  toJSON(): {
    nats: number;
    se: number;
    samples: number;
    interval?: Interval;
    provenance?: Provenance;
  } {
    const plain = {
      nats: this.nats,
      se: this.se,
      samples: this.samples,
      ...(this.interval ? { interval: this.interval } : {}),
    };
    return this.provenance ? { ...plain, provenance: this.provenance } : plain;
  }

  /** `0.5123 ± 0.0311 nats (n=100)`, with `, 95 % [0.46, 0.59]` when it has an interval */
  toString(): string {
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
