/**
 * Pillow's `Image.resize`, ported exactly, so a study resizes as the reference code does: its
 * datasets open images with PIL and resize them with `BILINEAR` (COCO localization), `BICUBIC`
 * (ARO through torchvision's `Resize`, which calls PIL for PIL images) or `LANCZOS` (the
 * intervention, through diffusers' `VaeImageProcessor`), and masks with `NEAREST`. libvips (sharp)
 * resizes differently: its upsampling is not the kernel's, off by up to half the range at an edge.
 *
 * Ported from Pillow 10.0.0 (the reference's `Pillow>=10.0.0`), `src/libImaging/Resample.c` and
 * `Geometry.c`: the filters, their coefficients normalised to 22-bit fixed point, a horizontal then
 * a vertical pass with 8-bit rounding between them (Pillow 11+ runs the vertical pass first when the
 * height shrinks more than twice as much as the width, which moves values by a few levels there), and nearest neighbour
 * as Pillow's scale transform steps it (source pixel `floor` of an accumulated `(x + ½)·in/out`).
 * `tests/geometry.test.ts` checks every filter byte for byte against Pillow's output.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";

/** Pillow's resampling filters that the reference's protocols use. */
export type PilFilter = "bilinear" | "bicubic" | "lanczos";

/** 32 − 8 − 2: Pillow's fixed-point precision for 8-bit images. */
const PRECISION_BITS = 22;

interface Filter {
  readonly support: number;
  readonly weight: (x: number) => number;
}

const FILTERS: Readonly<Record<PilFilter, Filter>> = {
  bilinear: { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) },
  bicubic: { support: 2, weight: bicubic },
  lanczos: { support: 3, weight: (x) => (-3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

/**
 * Resizes 8-bit interleaved pixels (`channels` per pixel, row by row) to `outWidth`×`outHeight`
 * as Pillow's `Image.resize(size, filter)` does for an "RGB" or "L" image: the same bytes.
 *
 * @throws {InvalidArgumentError} for sizes that are not positive integers or pixels of another length
 *
 * @example
 * ```ts
 * import { pilResize } from "./pil-resize.ts";
 * // one row 0, 255 doubled: Pillow's BILINEAR gives 0, 64, 191, 255
 * const out = pilResize(new Uint8Array([0, 255]), 2, 1, 1, 4, 1, "bilinear");
 * console.assert(out.join(",") === "0,64,191,255");
 * ```
 */
export function pilResize(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  filter: PilFilter,
): Uint8Array {
  checkSizes(pixels.length, width, height, channels, outWidth, outHeight);
  const kernel = FILTERS[filter];
  if (!kernel) {
    throw new InvalidArgumentError(
      `unknown resampling filter ${JSON.stringify(filter)}; expected ${
        Object.keys(FILTERS).join(", ")
      }`,
    );
  }
  if (width === outWidth && height === outHeight) return pixels.slice(); // Pillow copies
  const vertical = coefficients(height, outHeight, kernel);
  let image = { data: pixels, width, height };
  if (outWidth !== width) {
    // only the rows the vertical pass reads, as Pillow
    const first = vertical.bounds[0];
    const last = vertical.bounds[2 * outHeight - 2] + vertical.bounds[2 * outHeight - 1];
    image = horizontalPass(image, channels, first, last, coefficients(width, outWidth, kernel));
    for (let y = 0; y < outHeight; y++) vertical.bounds[2 * y] -= first;
  }
  if (outHeight !== height) image = verticalPass(image, channels, vertical);
  return image.data;
}

interface Coefficients {
  /** per output pixel: first input pixel, count */
  readonly bounds: Int32Array;
  /** per output pixel, `size` fixed-point weights */
  readonly weights: Int32Array;
  readonly size: number;
}

/** Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc` for one axis. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const inverse = 1 / filterScale;
  const bounds = new Int32Array(2 * outSize);
  const weights = new Int32Array(outSize * size);
  const k = new Float64Array(size);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < count; x++) {
      k[x] = filter.weight((x + xmin - center + 0.5) * inverse);
      sum += k[x];
    }
    for (let x = 0; x < count; x++) {
      const w = sum !== 0 ? k[x] / sum : k[x];
      weights[xx * size + x] = Math.trunc(
        w < 0 ? -0.5 + w * 2 ** PRECISION_BITS : 0.5 + w * 2 ** PRECISION_BITS,
      );
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = count;
  }
  return { bounds, weights, size };
}

interface Plane {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

function horizontalPass(
  image: Plane,
  channels: number,
  firstRow: number,
  lastRow: number,
  c: Coefficients,
): Plane {
  const width = c.bounds.length / 2, height = lastRow - firstRow;
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    const row = (y + firstRow) * image.width;
    for (let x = 0; x < width; x++) {
      const start = c.bounds[2 * x], count = c.bounds[2 * x + 1], k = x * c.size;
      for (let ch = 0; ch < channels; ch++) {
        let sum = 1 << (PRECISION_BITS - 1);
        for (let i = 0; i < count; i++) {
          sum += image.data[(row + start + i) * channels + ch] * c.weights[k + i];
        }
        out[(y * width + x) * channels + ch] = clip8(sum);
      }
    }
  }
  return { data: out, width, height };
}

function verticalPass(image: Plane, channels: number, c: Coefficients): Plane {
  const height = c.bounds.length / 2, width = image.width;
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    const start = c.bounds[2 * y], count = c.bounds[2 * y + 1], k = y * c.size;
    for (let x = 0; x < width * channels; x++) {
      let sum = 1 << (PRECISION_BITS - 1);
      for (let i = 0; i < count; i++) {
        sum += image.data[(start + i) * width * channels + x] * c.weights[k + i];
      }
      out[y * width * channels + x] = clip8(sum);
    }
  }
  return { data: out, width, height };
}

/** Pillow's `clip8`: the fixed-point sum shifted back to a byte, clamped to [0, 255]. */
function clip8(sum: number): number {
  return Math.min(255, Math.max(0, Math.floor(sum / 2 ** PRECISION_BITS)));
}

/**
 * Resizes a one-value-per-pixel array (a mask, row by row) to `outWidth`×`outHeight` as Pillow's
 * `Image.resize(size, Image.NEAREST)`: output pixel x reads input pixel ⌊(x + ½)·in/out⌋, with the
 * position accumulated in steps of in/out as Pillow does (so a tie lands where Pillow's lands).
 * For 10 → 8 pixels it reads 0, 1, 3, 4, 5, 6, 8, 9 (PyTorch's "nearest", ⌊x·in/out⌋, reads
 * 0, 1, 2, 3, 5, 6, 7, 8).
 *
 * @throws {InvalidArgumentError} for sizes that are not positive integers or values of another length
 *
 * @example
 * ```ts
 * import { pilNearest } from "./pil-resize.ts";
 * const row = pilNearest(Uint8Array.from({ length: 10 }, (_, i) => i), 10, 1, 8, 1);
 * console.assert(row.join(",") === "0,1,3,4,5,6,8,9");
 * ```
 */
export function pilNearest(
  values: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  checkSizes(values.length, width, height, 1, outWidth, outHeight);
  const columns = nearestIndices(width, outWidth);
  const rows = nearestIndices(height, outHeight);
  const out = new Uint8Array(outWidth * outHeight);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      // a position past the edge (never met in practice) is filled with 0, as Pillow fills it
      const inside = rows[y] < height && columns[x] < width;
      out[y * outWidth + x] = inside ? values[rows[y] * width + columns[x]] : 0;
    }
  }
  return out;
}

/** Pillow's `ImagingScaleAffine` positions: start at ½·step, add the step, truncate. */
function nearestIndices(inSize: number, outSize: number): Int32Array {
  const step = inSize / outSize;
  const out = new Int32Array(outSize);
  let position = step * 0.5;
  for (let i = 0; i < outSize; i++) {
    out[i] = Math.trunc(position);
    position += step;
  }
  return out;
}

function checkSizes(
  length: number,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): void {
  for (const [name, value] of Object.entries({ width, height, channels, outWidth, outHeight })) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
    }
  }
  if (length !== width * height * channels) {
    throw new InvalidArgumentError(
      `pixels hold ${length} values; expected width·height·channels = ` +
        `${width}·${height}·${channels} = ${width * height * channels}`,
    );
  }
}
