/**
 * Crisp rasterisation of the shapes world's objects: a pixel belongs to an object when its centre
 * lies inside the shape, so masks are exact and object pixels are exactly the mask.
 *
 * @module
 */
import { InvalidArgumentError } from "../../errors.ts";

/** The shapes the world draws. */
export type ShapeName = "circle" | "square" | "triangle";

/**
 * A binary row-major mask (`size·size`, 1 inside) of one shape centred at (cx, cy) with half-extent
 * `radius` in pixel units (pixel (x, y) has its centre at (x + 0.5, y + 0.5)). The square covers
 * the 2r×2r box, the circle the disc of radius r, the triangle points up with its apex at the top
 * middle of the box and its base on the box's bottom edge.
 *
 * @example
 * ```ts
 * import { drawShape } from "./draw.ts";
 * const mask = drawShape("square", 8, 4, 4, 2);
 * console.assert(mask.reduce((a, b) => a + b, 0) === 16);
 * ```
 */
export function drawShape(
  shape: ShapeName,
  size: number,
  cx: number,
  cy: number,
  radius: number,
): Uint8Array {
  if (!Number.isInteger(size) || size <= 0) {
    throw new InvalidArgumentError(`size must be a positive integer, got ${size}`);
  }
  if (!(radius > 0)) throw new InvalidArgumentError(`radius must be positive, got ${radius}`);
  const inside = insideTest(shape, cx, cy, radius);
  const mask = new Uint8Array(size * size);
  const x0 = Math.max(0, Math.floor(cx - radius)), x1 = Math.min(size, Math.ceil(cx + radius));
  const y0 = Math.max(0, Math.floor(cy - radius)), y1 = Math.min(size, Math.ceil(cy + radius));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) if (inside(x + 0.5, y + 0.5)) mask[y * size + x] = 1;
  }
  return mask;
}

function insideTest(
  shape: ShapeName,
  cx: number,
  cy: number,
  r: number,
): (px: number, py: number) => boolean {
  switch (shape) {
    case "circle":
      return (px, py) => (px - cx) ** 2 + (py - cy) ** 2 <= r * r;
    case "square":
      return (px, py) => Math.abs(px - cx) < r && Math.abs(py - cy) < r;
    case "triangle":
      // Half-width grows linearly from 0 at the apex (cy − r) to r at the base (cy + r).
      return (px, py) => py < cy + r && Math.abs(px - cx) <= (py - (cy - r)) / 2;
    default:
      throw new InvalidArgumentError(
        `unknown shape "${shape}", expected one of circle, square, triangle`,
      );
  }
}
