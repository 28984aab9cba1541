/**
 * {@link Heatmap}: a width×height map of real values (per-pixel information in nats, attention
 * weights, masks), with the arithmetic, resampling and display that interpretability maps need.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { InvalidArgumentError } from "../errors.ts";
import { applyColormap } from "./colormap.ts";
import { encodePng } from "./encode-png.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";

/** Resampling kernels of {@link Heatmap.upsample}, named as in PyTorch's `F.interpolate`. */
export type UpsampleMethod = "bilinear" | "bicubic";

/** Options of {@link Heatmap.upsample}. */
export interface UpsampleOptions {
  /** Interpolation kernel (default `"bilinear"`). */
  method?: UpsampleMethod;
}

/** The JSON form of a {@link Heatmap} (`JSON.stringify(map)` produces it). */
export interface HeatmapJSON {
  /** Number of columns. */
  width: number;
  /** Number of rows. */
  height: number;
  /** Row-major values, `width·height` of them. */
  data: number[];
}

/** PyTorch's bicubic convolution coefficient (`A` in `UpSample.h`). */
const CUBIC_A = -0.75;

/** Smallest side, in pixels, of the image a Heatmap shows as in Jupyter. */
const DISPLAY_MIN_SIDE = 256;

/**
 * A width×height map of finite values stored row-major in a Float32Array (`data[y·width + x]`).
 *
 * Methods never modify the map; they return numbers or new Heatmaps. The constructor takes
 * ownership of `data` without copying, so do not modify the array afterwards.
 *
 * In a Deno Jupyter notebook a Heatmap displays as a viridis-coloured PNG image.
 *
 * @example
 * ```ts
 * import { Heatmap } from "./heatmap.ts";
 * const map = new Heatmap(2, 2, new Float32Array([0, 1, 2, 3]));
 * console.assert(map.sum() === 6 && map.max() === 3);
 * const big = map.upsample(4, 4); // bilinear, like F.interpolate(align_corners=False)
 * console.assert(big.width === 4 && big.data[0] === 0);
 * ```
 */
export class Heatmap {
  /** Number of columns. */
  readonly width: number;
  /** Number of rows. */
  readonly height: number;
  /** Row-major values: `data[y·width + x]`. */
  readonly data: Float32Array;

  /**
   * Wraps row-major values as a map, checking size and finiteness.
   *
   * @param width number of columns (positive integer)
   * @param height number of rows (positive integer)
   * @param data row-major values, exactly `width·height` finite numbers (not copied)
   * @throws {InvalidArgumentError} for a bad size, wrong length or non-finite values
   */
  constructor(width: number, height: number, data: Float32Array) {
    if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
      throw new InvalidArgumentError(
        `heatmap size must be positive integers, got width=${width}, height=${height}`,
      );
    }
    if (!(data instanceof Float32Array)) {
      throw new InvalidArgumentError(
        `heatmap data must be a Float32Array, got ${Object.prototype.toString.call(data)}`,
      );
    }
    if (data.length !== width * height) {
      throw new InvalidArgumentError(
        `heatmap data has ${data.length} values, expected width·height = ${width}·${height} = ${
          width * height
        }`,
      );
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new InvalidArgumentError(
          `heatmap value at (x=${i % width}, y=${Math.floor(i / width)}) is ${
            data[i]
          }, expected a finite number`,
        );
      }
    }
    this.width = width;
    this.height = height;
    this.data = data;
  }

  /**
   * A map of zeros.
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * console.assert(Heatmap.zeros(3, 2).sum() === 0);
   * ```
   */
  static zeros(width: number, height: number): Heatmap {
    const size = Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0
      ? width * height
      : 0;
    return new Heatmap(width, height, new Float32Array(size));
  }

  /**
   * The element-wise mean of maps of one size (e.g. averaging per-seed maps).
   *
   * @throws {InvalidArgumentError} for an empty list or maps of different sizes
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * const a = new Heatmap(1, 2, new Float32Array([0, 2]));
   * const b = new Heatmap(1, 2, new Float32Array([2, 4]));
   * console.assert(Heatmap.mean([a, b]).data[1] === 3);
   * ```
   */
  static mean(maps: readonly Heatmap[]): Heatmap {
    if (maps.length === 0) {
      throw new InvalidArgumentError("Heatmap.mean needs at least one map, got an empty list");
    }
    const [first] = maps;
    const total = new Float64Array(first.data.length);
    for (const map of maps) {
      requireSameSize(first, map, "Heatmap.mean");
      for (let i = 0; i < total.length; i++) total[i] += map.data[i];
    }
    return new Heatmap(
      first.width,
      first.height,
      Float32Array.from(total, (v) => v / maps.length),
    );
  }

  /**
   * Rebuilds a map from its JSON form ({@link Heatmap.toJSON}).
   *
   * @throws {InvalidArgumentError} when the object is not a valid HeatmapJSON
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * const map = Heatmap.fromJSON(JSON.parse('{"width":1,"height":1,"data":[5]}'));
   * console.assert(map.data[0] === 5);
   * ```
   */
  static fromJSON(json: HeatmapJSON): Heatmap {
    if (json === null || typeof json !== "object" || !Array.isArray(json.data)) {
      throw new InvalidArgumentError(
        "heatmap JSON must be an object { width, height, data: number[] }",
      );
    }
    return new Heatmap(json.width, json.height, Float32Array.from(json.data));
  }

  /**
   * The value at column x, row y.
   *
   * @throws {InvalidArgumentError} for coordinates outside the map
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * console.assert(new Heatmap(2, 1, new Float32Array([4, 7])).at(1, 0) === 7);
   * ```
   */
  at(x: number, y: number): number {
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0) {
      throw new InvalidArgumentError(`coordinates must be non-negative integers, got (${x}, ${y})`);
    }
    if (x >= this.width || y >= this.height) {
      throw new InvalidArgumentError(
        `(${x}, ${y}) is outside the ${this.width}×${this.height} map`,
      );
    }
    return this.data[y * this.width + x];
  }

  /**
   * Sum of all values (accumulated in double precision). For an information map it equals the
   * image-level estimate.
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * console.assert(new Heatmap(2, 1, new Float32Array([1.5, 2.5])).sum() === 4);
   * ```
   */
  sum(): number {
    let total = 0;
    for (const v of this.data) total += v;
    return total;
  }

  /**
   * Smallest value.
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * console.assert(new Heatmap(2, 1, new Float32Array([3, -1])).min() === -1);
   * ```
   */
  min(): number {
    let m = Infinity;
    for (const v of this.data) if (v < m) m = v;
    return m;
  }

  /**
   * Largest value.
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * console.assert(new Heatmap(2, 1, new Float32Array([3, -1])).max() === 3);
   * ```
   */
  max(): number {
    let m = -Infinity;
    for (const v of this.data) if (v > m) m = v;
    return m;
  }

  /**
   * Mean value.
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * console.assert(new Heatmap(2, 1, new Float32Array([1, 2])).mean() === 1.5);
   * ```
   */
  mean(): number {
    return this.sum() / this.data.length;
  }

  /**
   * Min–max normalisation to [0, 1]: `(v − min) / (max − min)`. A constant map (max = min) has no
   * contrast to show and becomes all zeros rather than NaN.
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * const n = new Heatmap(3, 1, new Float32Array([2, 4, 6])).normalize();
   * console.assert(n.data[0] === 0 && n.data[1] === 0.5 && n.data[2] === 1);
   * ```
   */
  normalize(): Heatmap {
    const lo = this.min();
    const range = this.max() - lo;
    const out = new Float32Array(this.data.length);
    if (range > 0) {
      for (let i = 0; i < out.length; i++) out[i] = (this.data[i] - lo) / range;
    }
    return new Heatmap(this.width, this.height, out);
  }

  /**
   * Resamples to width×height exactly like PyTorch's
   * `F.interpolate(x, size=(height, width), mode=method, align_corners=False)`: source coordinate
   * `(dst + 0.5)·in/out − 0.5`; bilinear clamps negative coordinates to 0 and the upper neighbour
   * to the last pixel; bicubic uses Keys' kernel with a = −0.75 and clamps the four taps to the
   * border. Works for shrinking too (without antialiasing, as PyTorch's default). Bicubic can
   * overshoot the input range.
   *
   * @param width output columns (positive integer)
   * @param height output rows (positive integer)
   * @param options `method`: `"bilinear"` (default) or `"bicubic"`
   * @throws {InvalidArgumentError} for a bad size or unknown method
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * const up = new Heatmap(2, 1, new Float32Array([0, 4])).upsample(4, 1);
   * console.assert(up.data.join() === "0,1,3,4");
   * ```
   */
  upsample(width: number, height: number, options: UpsampleOptions = {}): Heatmap {
    const method = options.method ?? "bilinear";
    if (method !== "bilinear" && method !== "bicubic") {
      throw new InvalidArgumentError(
        `unknown upsample method "${method}", expected "bilinear" or "bicubic"`,
      );
    }
    if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
      throw new InvalidArgumentError(
        `upsample size must be positive integers, got width=${width}, height=${height}`,
      );
    }
    const taps = method === "bilinear" ? bilinearTaps : bicubicTaps;
    const columns = taps(this.width, width);
    const rows = taps(this.height, height);
    const out = new Float32Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let value = 0;
        for (let j = 0; j < rows.count; j++) {
          const rowWeight = rows.weights[y * rows.count + j];
          const rowStart = rows.indices[y * rows.count + j] * this.width;
          let rowValue = 0;
          for (let i = 0; i < columns.count; i++) {
            rowValue += columns.weights[x * columns.count + i] *
              this.data[rowStart + columns.indices[x * columns.count + i]];
          }
          value += rowWeight * rowValue;
        }
        out[y * width + x] = value;
      }
    }
    return new Heatmap(width, height, out);
  }

  /**
   * A binary mask: 1 where the value is ≥ t, else 0 (row-major, like `data`).
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * const mask = new Heatmap(3, 1, new Float32Array([0.2, 0.4, 0.9])).threshold(0.4);
   * console.assert(mask.join() === "0,1,1");
   * ```
   */
  threshold(t: number): Uint8Array {
    if (Number.isNaN(t)) throw new InvalidArgumentError("threshold must be a number, got NaN");
    return Uint8Array.from(this.data, (v) => (v >= t ? 1 : 0));
  }

  /**
   * Element-wise sum with a map of the same size.
   *
   * @throws {InvalidArgumentError} when the sizes differ
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * const a = new Heatmap(2, 1, new Float32Array([1, 2]));
   * console.assert(a.add(a).data.join() === "2,4");
   * ```
   */
  add(other: Heatmap): Heatmap {
    requireSameSize(this, other, "Heatmap.add");
    return new Heatmap(this.width, this.height, this.data.map((v, i) => v + other.data[i]));
  }

  /**
   * Every value multiplied by k (e.g. nats → bits with k = 1/ln 2).
   *
   * @throws {InvalidArgumentError} for a non-finite k
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * console.assert(new Heatmap(1, 1, new Float32Array([2])).scale(3).data[0] === 6);
   * ```
   */
  scale(k: number): Heatmap {
    if (!Number.isFinite(k)) {
      throw new InvalidArgumentError(`scale factor must be a finite number, got ${k}`);
    }
    return new Heatmap(this.width, this.height, this.data.map((v) => v * k));
  }

  /**
   * The JSON form `{ width, height, data: number[] }` (used by `JSON.stringify`).
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * const json = JSON.stringify(new Heatmap(1, 1, new Float32Array([0.5])));
   * console.assert(json === '{"width":1,"height":1,"data":[0.5]}');
   * ```
   */
  toJSON(): HeatmapJSON {
    return { width: this.width, height: this.height, data: Array.from(this.data) };
  }

  /**
   * Jupyter rich display (Deno kernel): the min–max normalised map coloured with viridis as a PNG,
   * enlarged with nearest-neighbour pixels so the longer side is at least 256 px. Synchronous, as
   * the kernel expects.
   *
   * @example
   * ```ts
   * import { Heatmap } from "./heatmap.ts";
   * import { JUPYTER_DISPLAY } from "../jupyter.ts";
   * const bundle = Heatmap.zeros(8, 8)[JUPYTER_DISPLAY]();
   * console.assert(typeof bundle["image/png"] === "string");
   * ```
   */
  [JUPYTER_DISPLAY](): MimeBundle {
    const factor = Math.max(1, Math.ceil(DISPLAY_MIN_SIDE / Math.max(this.width, this.height)));
    const colours = applyColormap(this.normalize(), "viridis");
    const width = this.width * factor;
    const height = this.height * factor;
    const rgb = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const source = 3 * (Math.floor(y / factor) * this.width + Math.floor(x / factor));
        rgb.set(colours.subarray(source, source + 3), 3 * (y * width + x));
      }
    }
    return {
      "image/png": Buffer.from(encodePng(rgb, width, height)).toString("base64"),
      "text/plain": `Heatmap ${this.width}×${this.height} (min ${this.min()}, max ${this.max()}, ` +
        `sum ${this.sum()})`,
    };
  }
}

/** Throws unless both maps have one size. */
function requireSameSize(a: Heatmap, b: Heatmap, operation: string): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new InvalidArgumentError(
      `${operation} needs maps of one size, got ${a.width}×${a.height} and ${b.width}×${b.height}`,
    );
  }
}

/** Source indices and weights of every output position along one axis (`count` taps each). */
interface Taps {
  count: number;
  indices: Int32Array;
  weights: Float64Array;
}

/** PyTorch `area_pixel_compute_source_index` with align_corners = False (before any clamping). */
function sourceCoordinate(inSize: number, outSize: number, dst: number): number {
  return (dst + 0.5) * (inSize / outSize) - 0.5;
}

/** Linear taps as in PyTorch's `upsample_bilinear2d`. */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const indices = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * 2);
  for (let d = 0; d < outSize; d++) {
    const src = Math.max(0, sourceCoordinate(inSize, outSize, d));
    const i0 = Math.floor(src);
    const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    const lambda = src - i0;
    indices[2 * d] = i0;
    indices[2 * d + 1] = i1;
    weights[2 * d] = 1 - lambda;
    weights[2 * d + 1] = lambda;
  }
  return { count: 2, indices, weights };
}

/** Cubic taps as in PyTorch's `upsample_bicubic2d` (four neighbours, clamped to the border). */
function bicubicTaps(inSize: number, outSize: number): Taps {
  const indices = new Int32Array(outSize * 4);
  const weights = new Float64Array(outSize * 4);
  for (let d = 0; d < outSize; d++) {
    const src = sourceCoordinate(inSize, outSize, d);
    const base = Math.floor(src);
    const t = src - base;
    const coefficients = [
      cubicFar(t + 1),
      cubicNear(t),
      cubicNear(1 - t),
      cubicFar(2 - t),
    ];
    for (let k = 0; k < 4; k++) {
      indices[4 * d + k] = Math.min(inSize - 1, Math.max(0, base - 1 + k));
      weights[4 * d + k] = coefficients[k];
    }
  }
  return { count: 4, indices, weights };
}

/** Keys' cubic kernel for |x| ≤ 1 (PyTorch `cubic_convolution1`). */
function cubicNear(x: number): number {
  return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1;
}

/** Keys' cubic kernel for 1 < |x| < 2 (PyTorch `cubic_convolution2`). */
function cubicFar(x: number): number {
  return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A;
}
