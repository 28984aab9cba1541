/**
 * A simple rule that reads a shapes-world object back from pixels, to judge generated samples:
 * each pixel takes the nearest palette colour (black background, red, green, blue, yellow) when it
 * lies within `tolerance` of it; the object of a colour is the largest 4-connected blob of pixels
 * of that colour; its shape is read from how much of its bounding box it fills (square ≈ 1,
 * circle ≈ π/4 ≈ 0.79, upward triangle ≈ 0.5).
 *
 * @module
 */
import { InvalidArgumentError, InvalidImageError } from "../../errors.ts";
import { COLOUR_RGB, type ColourName, COLOURS } from "./caption.ts";
import type { ShapeName } from "./draw.ts";

/** One blob found by {@link findObject}. */
export interface RecognisedObject {
  /** the blob's colour */
  readonly colour: ColourName;
  /** the shape its fill ratio says */
  readonly shape: ShapeName;
  /** pixels in the blob */
  readonly area: number;
  /** area / bounding-box area */
  readonly fill: number;
  /** bounding box [x0, y0, x1, y1), pixels */
  readonly box: readonly [number, number, number, number];
}

/** Options of {@link findObject} and {@link largestObject}. */
export interface RecogniseOptions {
  /** largest RGB distance (in [0, 1] units per channel) to the nearest palette colour (default 0.5) */
  readonly tolerance?: number;
  /** smallest blob that counts as an object, in pixels (default 8) */
  readonly minArea?: number;
}

/** Fill ratios between the shapes' ideal values: triangle 0.5 | circle π/4 | square 1. */
const CIRCLE_ABOVE = 0.64;
const SQUARE_ABOVE = 0.9;

/**
 * The shape a fill ratio of its bounding box says: < 0.64 triangle, < 0.9 circle, else square.
 *
 * @example
 * ```ts
 * import { shapeFromFill } from "./recognise.ts";
 * console.assert(shapeFromFill(Math.PI / 4) === "circle" && shapeFromFill(0.5) === "triangle");
 * ```
 */
export function shapeFromFill(fill: number): ShapeName {
  if (fill < CIRCLE_ABOVE) return "triangle";
  return fill < SQUARE_ABOVE ? "circle" : "square";
}

/**
 * Per pixel: index into COLOURS of its palette colour, −1 for background, −2 for no colour within
 * tolerance. `pixels` are CHW RGB in [−1, 1] (a model's output).
 *
 * @example
 * ```ts
 * import { paletteLabels } from "./recognise.ts";
 * // one red pixel and one black pixel, CHW
 * const labels = paletteLabels(new Float32Array([1, -1, -1, -1, -1, -1]), 2, 1);
 * console.assert(labels[0] === 0 && labels[1] === -1);
 * ```
 */
export function paletteLabels(
  pixels: Float32Array,
  width: number,
  height: number,
  tolerance = 0.5,
): Int8Array {
  const plane = width * height;
  if (pixels.length !== 3 * plane) {
    throw new InvalidImageError(
      `expected 3·${height}·${width} = ${3 * plane} CHW RGB values, got ${pixels.length}`,
    );
  }
  if (!(tolerance > 0)) {
    throw new InvalidArgumentError(`tolerance must be > 0, got ${tolerance}`);
  }
  const palette = [[0, 0, 0], ...COLOURS.map((c) => COLOUR_RGB[c].map((v) => v / 255))];
  const labels = new Int8Array(plane);
  for (let p = 0; p < plane; p++) {
    const rgb = [0, 1, 2].map((c) => (pixels[c * plane + p] + 1) / 2);
    let best = -2, bestDistance = tolerance * tolerance;
    palette.forEach((colour, k) => {
      const distance = (rgb[0] - colour[0]) ** 2 + (rgb[1] - colour[1]) ** 2 +
        (rgb[2] - colour[2]) ** 2;
      if (distance < bestDistance) {
        bestDistance = distance;
        best = k - 1;
      }
    });
    labels[p] = best;
  }
  return labels;
}

/**
 * The largest blob of the named colour in CHW RGB pixels in [−1, 1], or undefined when there is
 * none of at least `minArea` pixels.
 *
 * @example
 * ```ts
 * import { findObject } from "./recognise.ts";
 * import { shapesWorld } from "./world.ts";
 * const scene = shapesWorld({ seed: 1, count: 1, maxObjects: 1 }).scenes[0];
 * const object = scene.objects[0];
 * const found = findObject(scene.toData(), scene.size, scene.size, object.colour);
 * console.assert(found?.shape === object.shape);
 * ```
 */
export function findObject(
  pixels: Float32Array,
  width: number,
  height: number,
  colour: ColourName,
  options: RecogniseOptions = {},
): RecognisedObject | undefined {
  const index = COLOURS.indexOf(colour);
  if (index < 0) {
    throw new InvalidArgumentError(`unknown colour "${colour}"; expected one of ${COLOURS}`);
  }
  const labels = paletteLabels(pixels, width, height, options.tolerance ?? 0.5);
  return blobs(labels, width, height, (label) => label === index, options.minArea ?? 8)[0];
}

/**
 * The largest blob of any palette colour (not background), whatever the caption named.
 *
 * @example
 * ```ts
 * import { largestObject } from "./recognise.ts";
 * import { shapesWorld } from "./world.ts";
 * const scene = shapesWorld({ seed: 2, count: 1, maxObjects: 1 }).scenes[0];
 * console.assert(largestObject(scene.toData(), scene.size, scene.size)?.colour === scene.objects[0].colour);
 * ```
 */
export function largestObject(
  pixels: Float32Array,
  width: number,
  height: number,
  options: RecogniseOptions = {},
): RecognisedObject | undefined {
  const labels = paletteLabels(pixels, width, height, options.tolerance ?? 0.5);
  return blobs(labels, width, height, (label) => label >= 0, options.minArea ?? 8)[0];
}

/** 4-connected blobs of same-label pixels accepted by `keep`, largest first. */
function blobs(
  labels: Int8Array,
  width: number,
  height: number,
  keep: (label: number) => boolean,
  minArea: number,
): RecognisedObject[] {
  const seen = new Uint8Array(labels.length);
  const found: RecognisedObject[] = [];
  const stack: number[] = [];
  for (let start = 0; start < labels.length; start++) {
    const label = labels[start];
    if (seen[start] || !keep(label)) continue;
    seen[start] = 1;
    stack.push(start);
    let area = 0, x0 = width, y0 = height, x1 = 0, y1 = 0;
    while (stack.length > 0) {
      const p = stack.pop()!, x = p % width, y = (p - x) / width;
      area++;
      x0 = Math.min(x0, x),
        y0 = Math.min(y0, y),
        x1 = Math.max(x1, x + 1),
        y1 = Math.max(y1, y + 1);
      const neighbours = [
        x > 0 ? p - 1 : -1,
        x < width - 1 ? p + 1 : -1,
        y > 0 ? p - width : -1,
        y < height - 1 ? p + width : -1,
      ];
      for (const q of neighbours) {
        if (q >= 0 && !seen[q] && labels[q] === label) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    if (area < minArea) continue;
    const fill = area / ((x1 - x0) * (y1 - y0));
    found.push({
      colour: COLOURS[label],
      shape: shapeFromFill(fill),
      area,
      fill,
      box: [x0, y0, x1, y1],
    });
  }
  return found.sort((a, b) => b.area - a.area);
}
