/**
 * The standard normal distribution: density and lower tail, the latter to double precision far
 * into the tail (the training-law log-SNR proposal of flow models draws and weights α with them).
 *
 * @module
 */

const SQRT_PI = Math.sqrt(Math.PI);

/**
 * erfc(z) = 1 − erf(z), with full relative precision for large z: the positive series of erf
 * below 1, the continued fraction of erfc from there on (200 terms: converged to the last bit at
 * z = 1), and 2 − erfc(−z) for negative z.
 *
 * @example
 * ```ts
 * import { erfc } from "./normal.ts";
 * // Python's math.erfc(3) = 2.209049699858544e-05
 * console.assert(Math.abs(erfc(3) / 2.209049699858544e-05 - 1) < 1e-14);
 * ```
 */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 0) return 2 - erfc(-z);
  if (z === Infinity) return 0;
  if (z < 1) {
    // erf(z) = 2/√π · e^(−z²) · Σ 2ⁿ z^(2n+1) / (1·3·…·(2n+1)): positive terms, no cancellation
    let term = z, sum = z;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= (2 * z * z) / (2 * n + 1);
      sum += term;
    }
    return 1 - (2 / SQRT_PI) * Math.exp(-z * z) * sum;
  }
  // erfc(z) = e^(−z²)/√π / (z + ½/(z + 1/(z + (3/2)/(z + …)))), evaluated from the tail
  let fraction = z;
  for (let k = 200; k >= 1; k--) fraction = z + k / 2 / fraction;
  return Math.exp(-z * z) / (SQRT_PI * fraction);
}

/**
 * The standard normal density φ(x).
 *
 * @example
 * ```ts
 * import { normalDensity } from "./normal.ts";
 * console.assert(Math.abs(normalDensity(0) - 1 / Math.sqrt(2 * Math.PI)) < 1e-16);
 * ```
 */
export function normalDensity(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}

/**
 * The lower tail Φ(x) = P(Z ≤ x), with full relative precision for x ≪ 0.
 *
 * @example
 * ```ts
 * import { normalCdf } from "./normal.ts";
 * console.assert(Math.abs(normalCdf(1.959963984540054) - 0.975) < 1e-15);
 * ```
 */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}
