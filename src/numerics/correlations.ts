/**
 * Correlations of a per-item value and its map with a per-item change and its map, each with a
 * bootstrap standard error over items: image level (one pair per item), pixel level per item
 * (r of the two maps, averaged over items whose maps are not constant) and pooled (r over all
 * pixels of all items).
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { bootstrap, pearson } from "./statistics.ts";

/** A correlation with its bootstrap standard error. */
export interface Correlation {
  /** Pearson r (NaN when fewer than 2 usable items) */
  readonly r: number;
  /** bootstrap standard error over items (NaN when fewer than 3 usable items) */
  readonly se: number;
  /** items that entered the statistic */
  readonly n: number;
  /** items left out because a map was constant (pixel level only) */
  readonly excluded: number;
}

/** The correlations of one method (information or attention) with the change. */
export interface MethodCorrelations {
  /** one (value, change) pair per item */
  readonly image: Correlation;
  /** per-item pixel-level r, averaged over items */
  readonly pixel: Correlation;
  /** r over all pixels of all items pooled */
  readonly pixelPooled: Correlation;
}

/**
 * Image-level, per-item pixel-level and pooled pixel-level correlations with bootstrap errors.
 *
 * @example
 * ```ts
 * import { methodCorrelations } from "./correlations.ts";
 * const c = methodCorrelations([0, 1, 3], [0, 2, 5], [[0, 1], [1, 0], [2, 1]], [[0, 1], [1, 0], [1, 0]], 50);
 * console.assert(c.image.r > 0.9 && c.image.n === 3);
 * ```
 */
export function methodCorrelations(
  change: readonly number[],
  value: readonly number[],
  changeMaps: readonly number[][],
  valueMaps: readonly number[][],
  resamples: number,
): MethodCorrelations {
  const image = imageCorrelation(change, value, resamples);
  const perItem = changeMaps.map((m, i) => pearsonOrNaN(m, valueMaps[i]));
  const usable = perItem.flatMap((r, i) => Number.isFinite(r) ? [i] : []);
  const pixel = correlate(
    usable.length,
    (idx) => idx.reduce((s, i) => s + perItem[usable[i]], 0) / idx.length,
    resamples,
    perItem.length - usable.length,
    1,
  );
  const moments = changeMaps.map((m, i) => pixelMoments(m, valueMaps[i]));
  const pixelPooled = correlate(
    change.length,
    (idx) => pooledPearson(idx, moments),
    resamples,
    0,
  );
  return { image, pixel, pixelPooled };
}

/**
 * Pearson r of one pair per item, with its bootstrap standard error over resampled items.
 *
 * @example
 * ```ts
 * import { imageCorrelation } from "./correlations.ts";
 * const c = imageCorrelation([0, 1, 3], [0, 2, 5], 50);
 * console.assert(c.r > 0.9 && c.n === 3);
 * ```
 */
export function imageCorrelation(
  change: readonly number[],
  value: readonly number[],
  resamples: number,
): Correlation {
  return correlate(change.length, (idx) => pearsonOf(idx, change, value), resamples, 0);
}

function correlate(
  n: number,
  statistic: (indices: Int32Array) => number,
  resamples: number,
  excluded: number,
  minimum = 2,
): Correlation {
  if (n < minimum) return { r: NaN, se: NaN, n, excluded };
  const r = statistic(Int32Array.from({ length: n }, (_, i) => i));
  if (n < 3 || !Number.isFinite(r)) return { r, se: NaN, n, excluded };
  const boot = bootstrap(n, statistic, { resamples, seed: 0 });
  return { r, se: boot.se, n, excluded };
}

function pearsonOf(indices: Int32Array, x: readonly number[], y: readonly number[]): number {
  return pearsonOrNaN(Array.from(indices, (i) => x[i]), Array.from(indices, (i) => y[i]));
}

/** Pearson r, or NaN where it is undefined (a constant sample). */
function pearsonOrNaN(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length < 2) return NaN;
  const r = pearson(x, y);
  return Number.isFinite(r) ? r : NaN;
}

interface Moments {
  n: number;
  x: number;
  y: number;
  xx: number;
  yy: number;
  xy: number;
}

function pixelMoments(x: readonly number[], y: readonly number[]): Moments {
  if (x.length !== y.length) {
    throw new InvalidArgumentError(
      `a change map has ${x.length} pixels but its comparison map ${y.length}; expected equal sizes`,
    );
  }
  const m = { n: x.length, x: 0, y: 0, xx: 0, yy: 0, xy: 0 };
  for (let i = 0; i < x.length; i++) {
    m.x += x[i];
    m.y += y[i];
    m.xx += x[i] * x[i];
    m.yy += y[i] * y[i];
    m.xy += x[i] * y[i];
  }
  return m;
}

function pooledPearson(indices: Int32Array, moments: readonly Moments[]): number {
  const t = { n: 0, x: 0, y: 0, xx: 0, yy: 0, xy: 0 };
  for (const i of indices) {
    const m = moments[i];
    t.n += m.n;
    t.x += m.x;
    t.y += m.y;
    t.xx += m.xx;
    t.yy += m.yy;
    t.xy += m.xy;
  }
  const sxy = t.xy - t.x * t.y / t.n;
  const sxx = t.xx - t.x * t.x / t.n, syy = t.yy - t.y * t.y / t.n;
  const r = sxy / Math.sqrt(sxx * syy);
  return sxx > 0 && syy > 0 && Number.isFinite(r) ? r : NaN;
}
