/**
 * COCO segmentation masks: run-length encodings (uncompressed count lists and pycocotools'
 * compressed strings) and polygons, decoded to row-major binary masks exactly as pycocotools does.
 *
 * COCO run lengths walk the image in COLUMN-major (Fortran) order, starting with a run of zeros
 * (which may be empty). Everything this module returns is ROW-major (`mask[y·width + x]`), the order
 * of images in this package.
 *
 * @module
 */
import { DatasetError } from "../errors.ts";

/** A run-length encoded mask: `size` is [height, width]; counts are uncompressed or a COCO string. */
export interface CocoRle {
  /** alternating run lengths (zeros first) in column-major order, or pycocotools' compressed string */
  readonly counts: readonly number[] | string;
  /** [height, width] */
  readonly size: readonly [number, number];
}

/** Polygons: each a flat list [x1, y1, x2, y2, …] in pixel coordinates; one object may have several. */
export type CocoPolygons = readonly (readonly number[])[];

/** A COCO segmentation: polygons or an RLE. */
export type CocoSegmentation = CocoPolygons | CocoRle;

/**
 * Run lengths → pycocotools' compressed string (6 bits per character, characters 48–111; from the
 * fourth count on, each count is stored as its difference to the count two before).
 *
 * @example
 * ```ts
 * import { rleToString } from "./coco-mask.ts";
 * console.assert(rleToString([0, 6, 1, 3]) === "061M");
 * console.assert(rleToString([0, 1024]) === "0PP1");
 * ```
 */
export function rleToString(counts: readonly number[]): string {
  let out = "";
  for (let i = 0; i < counts.length; i++) {
    let x = i > 2 ? counts[i] - counts[i - 2] : counts[i];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x = Math.floor(x / 32); // arithmetic shift for negatives too (x >> 5 would cut to 32 bits)
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  }
  return out;
}

/**
 * pycocotools' compressed string → run lengths.
 *
 * @example
 * ```ts
 * import { rleFromString } from "./coco-mask.ts";
 * console.assert(rleFromString("061M").join() === "0,6,1,3");
 * ```
 */
export function rleFromString(text: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < text.length) {
    let x = 0, k = 0, more = true;
    while (more) {
      if (p >= text.length) {
        throw new DatasetError(
          `compressed RLE string ends inside a number at character ${p}; expected a complete ` +
            `pycocotools string (characters 0x30–0x6f)`,
        );
      }
      const c = text.charCodeAt(p) - 48;
      if (c < 0 || c > 63) {
        throw new DatasetError(
          `compressed RLE string has character "${text[p]}" at ${p}; expected characters 0x30–0x6f`,
        );
      }
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k); // sign-extend
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * Row-major binary mask → uncompressed COCO RLE (column-major runs, zeros first).
 *
 * @example
 * ```ts
 * import { rleEncode } from "./coco-mask.ts";
 * // 2×2 mask with the right column set: column-major 0,0,1,1
 * const rle = rleEncode(new Uint8Array([0, 1, 0, 1]), 2, 2);
 * console.assert(rle.counts.join() === "2,2");
 * ```
 */
export function rleEncode(
  mask: ArrayLike<number>,
  height: number,
  width: number,
): { counts: number[]; size: [number, number] } {
  checkSize(height, width, mask.length);
  const counts: number[] = [];
  let value = 0, run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { counts, size: [height, width] };
}

/**
 * COCO RLE (uncompressed or compressed) → row-major binary mask.
 *
 * @example
 * ```ts
 * import { rleDecode } from "./coco-mask.ts";
 * const mask = rleDecode({ counts: [2, 2], size: [2, 2] });
 * console.assert(mask.join() === "0,1,0,1");
 * ```
 */
export function rleDecode(rle: CocoRle): Uint8Array {
  const [height, width] = checkRleSize(rle.size);
  const counts = typeof rle.counts === "string" ? rleFromString(rle.counts) : rle.counts;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== height * width) {
    throw new DatasetError(
      `RLE run lengths sum to ${total}; expected height·width = ${height}·${width} = ${
        height * width
      }`,
    );
  }
  const mask = new Uint8Array(height * width);
  let index = 0, value = 0;
  for (const run of counts) {
    if (!Number.isInteger(run) || run < 0) {
      throw new DatasetError(`RLE run length ${run} is invalid; expected a non-negative integer`);
    }
    if (value) {
      for (let i = index; i < index + run; i++) {
        const x = Math.floor(i / height), y = i - x * height;
        mask[y * width + x] = 1;
      }
    }
    index += run;
    value ^= 1;
  }
  return mask;
}

/**
 * Rasterises polygons exactly like pycocotools (`frPyObjects` + `merge`): each polygon is traced
 * on a 5× grid and a pixel is set when its centre lies inside; several polygons are united.
 *
 * @example
 * ```ts
 * import { polygonMask } from "./coco-mask.ts";
 * // the square with corners (1,1) and (4,4) covers pixel centres 1.5, 2.5, 3.5: a 3×3 block
 * const mask = polygonMask([[1, 1, 4, 1, 4, 4, 1, 4]], 6, 6);
 * console.assert(mask.reduce((a, b) => a + b, 0) === 9 && mask[1 * 6 + 1] === 1);
 * ```
 */
export function polygonMask(polygons: CocoPolygons, height: number, width: number): Uint8Array {
  checkSize(height, width);
  const mask = new Uint8Array(height * width);
  for (const polygon of polygons) {
    if (!Array.isArray(polygon) || polygon.length < 6 || polygon.length % 2 !== 0) {
      throw new DatasetError(
        `a polygon needs an even number ≥ 6 of coordinates [x1, y1, x2, y2, …], got ${
          Array.isArray(polygon) ? polygon.length : typeof polygon
        }`,
      );
    }
    if (!polygon.every(Number.isFinite)) {
      throw new DatasetError(`polygon coordinates must be finite numbers, got [${polygon}]`);
    }
    const part = rleDecode({ counts: polygonRuns(polygon, height, width), size: [height, width] });
    for (let i = 0; i < mask.length; i++) mask[i] |= part[i];
  }
  return mask;
}

/** pycocotools' rleFrPoly: boundary points on a 5× upsampled grid → column-major run lengths. */
function polygonRuns(xy: readonly number[], h: number, w: number): number[] {
  const scale = 5;
  const k = xy.length / 2;
  const x: number[] = [], y: number[] = [];
  for (let j = 0; j < k; j++) {
    x.push(Math.trunc(scale * xy[2 * j] + 0.5));
    y.push(Math.trunc(scale * xy[2 * j + 1] + 0.5));
  }
  x.push(x[0]);
  y.push(y[0]);
  // Dense points along each edge, stepping one grid unit along the edge's longer axis.
  const u: number[] = [], v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const dx = Math.abs(xe - xs), dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) [xs, xe, ys, ye] = [xe, xs, ye, ys];
    const s = dx >= dy ? (dx === 0 ? 0 : (ye - ys) / dx) : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // Where the boundary crosses a pixel-centre column, record the first pixel below it.
  const starts: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    yd = Math.ceil(yd < 0 ? 0 : yd > h ? h : yd);
    starts.push(xd * h + yd);
  }
  starts.push(h * w);
  starts.sort((a, b) => a - b);
  // Successive differences are run lengths; empty runs merge their neighbours.
  const a: number[] = [];
  let previous = 0;
  for (const s of starts) {
    a.push(s - previous);
    previous = s;
  }
  const runs = [a[0]];
  for (let j = 1; j < a.length;) {
    if (a[j] > 0) runs.push(a[j++]);
    else {
      j++;
      if (j < a.length) runs[runs.length - 1] += a[j++];
    }
  }
  return runs;
}

/**
 * Decodes any COCO segmentation (polygons, uncompressed RLE, compressed RLE) of an image of the
 * given size to a row-major binary mask. Accepts an annotation (uses its `segmentation`) or a bare
 * segmentation.
 *
 * @example
 * ```ts
 * import { cocoMask } from "./coco-mask.ts";
 * const fromRle = cocoMask({ segmentation: { counts: "061M", size: [2, 5] } }, 2, 5);
 * const fromPolygon = cocoMask({ segmentation: [[0, 0, 2, 0, 2, 2, 0, 2]] }, 2, 5);
 * console.assert(fromRle.length === 10 && fromPolygon.join() === "1,1,0,0,0,1,1,0,0,0");
 * ```
 */
export function cocoMask(
  annotation: { readonly segmentation: CocoSegmentation } | CocoSegmentation,
  height: number,
  width: number,
): Uint8Array {
  checkSize(height, width);
  const segmentation = "segmentation" in annotation ? annotation.segmentation : annotation;
  if (Array.isArray(segmentation)) return polygonMask(segmentation as CocoPolygons, height, width);
  if (segmentation && typeof segmentation === "object" && "counts" in segmentation) {
    const rle = segmentation as CocoRle;
    const [h, w] = checkRleSize(rle.size);
    if (h !== height || w !== width) {
      throw new DatasetError(
        `RLE size is [${h}, ${w}] but the image is ${height}×${width}; expected them to agree`,
      );
    }
    return rleDecode(rle);
  }
  throw new DatasetError(
    `segmentation must be polygons [[x, y, …]] or an RLE {counts, size}, got ${
      JSON.stringify(segmentation)?.slice(0, 80)
    }`,
  );
}

/**
 * Tight bounding box [x, y, width, height] of a row-major mask, as pycocotools' toBbox
 * ([0, 0, 0, 0] for an empty mask).
 *
 * @example
 * ```ts
 * import { maskBbox } from "./coco-mask.ts";
 * console.assert(maskBbox(new Uint8Array([0, 0, 0, 1, 1, 0]), 2, 3).join() === "0,1,2,1");
 * ```
 */
export function maskBbox(
  mask: ArrayLike<number>,
  height: number,
  width: number,
): [number, number, number, number] {
  checkSize(height, width, mask.length);
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

function checkRleSize(size: unknown): [number, number] {
  if (
    !Array.isArray(size) || size.length !== 2 ||
    !size.every((v) => Number.isInteger(v) && v >= 0)
  ) {
    throw new DatasetError(
      `RLE size must be [height, width] (non-negative integers), got ${JSON.stringify(size)}`,
    );
  }
  return [size[0], size[1]];
}

function checkSize(height: number, width: number, length?: number): void {
  if (!Number.isInteger(height) || height <= 0 || !Number.isInteger(width) || width <= 0) {
    throw new DatasetError(`height and width must be positive integers, got ${height}×${width}`);
  }
  if (length !== undefined && length !== height * width) {
    throw new DatasetError(
      `mask has ${length} values; expected height·width = ${height}·${width} = ${height * width}`,
    );
  }
}
