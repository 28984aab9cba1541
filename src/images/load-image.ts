/**
 * Decodes an image input (file path, PNG/JPEG bytes or a sharp instance) with sharp into model
 * pixels: RGB, shorter side resized to the model resolution and centre-cropped, scaled to [−1, 1],
 * CHW Float32Array.
 *
 * @module
 */
import type sharpType from "npm:sharp@0.35.5";
import { loadSharp } from "./sharp.ts";
import { InvalidImageError } from "../errors.ts";

/** A sharp image pipeline (`sharp(...)`). */
export type SharpImage = ReturnType<typeof sharpType>;

/** What {@link loadImagePixels} accepts: a file path, PNG/JPEG bytes or a sharp instance. */
export type ImageSource = string | Uint8Array | SharpImage;

/**
 * Loads an image as CHW pixels in [−1, 1] at `width`×`height` (resize shorter side, centre crop).
 *
 * @example
 * ```ts
 * import { loadImagePixels } from "./load-image.ts";
 * const pixels = await loadImagePixels("fixtures/images/test-16.png", 16, 16);
 * console.assert(pixels.length === 3 * 16 * 16);
 * ```
 */
export async function loadImagePixels(
  image: ImageSource,
  width: number,
  height: number,
): Promise<Float32Array> {
  const name = describeInput(image);
  let pipeline: SharpImage;
  if (typeof image === "string") {
    pipeline = (await loadSharp())(image);
  } else if (image instanceof Uint8Array) {
    if (image.length === 0) {
      throw new InvalidImageError(`image ${name} is empty; expected PNG or JPEG bytes`);
    }
    pipeline = (await loadSharp())(image);
  } else if (isSharp(image)) {
    pipeline = image.clone();
  } else {
    throw new InvalidImageError(
      `image ${name} is not a file path, PNG/JPEG bytes or a sharp instance`,
    );
  }
  let data: Uint8Array;
  let info: { width: number; height: number; channels: number };
  try {
    const result = await pipeline
      .rotate() // honour EXIF orientation like image viewers do
      .toColourspace("srgb")
      .removeAlpha()
      .resize({ width, height, fit: "cover", position: "centre" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    data = result.data;
    info = result.info;
  } catch (error) {
    throw new InvalidImageError(
      `could not decode image ${name}; expected a readable PNG or JPEG`,
      { cause: error },
    );
  }
  if (info.width !== width || info.height !== height || info.channels !== 3) {
    throw new InvalidImageError(
      `image ${name} decoded to ${info.width}×${info.height}×${info.channels}; expected ${width}×${height}×3`,
    );
  }
  return hwcBytesToChw(data, width, height);
}

/** uint8 HWC RGB → float CHW in [−1, 1]. */
function hwcBytesToChw(data: Uint8Array, width: number, height: number): Float32Array {
  const plane = width * height;
  const pixels = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) pixels[c * plane + p] = data[p * 3 + c] / 127.5 - 1;
  }
  return pixels;
}

function isSharp(value: unknown): value is SharpImage {
  return typeof value === "object" && value !== null &&
    typeof (value as SharpImage).toBuffer === "function" &&
    typeof (value as SharpImage).clone === "function";
}

function describeInput(image: unknown): string {
  if (typeof image === "string") return `"${image}"`;
  if (image instanceof Uint8Array) return `<${image.length} bytes>`;
  if (isSharp(image)) return "<sharp instance>";
  return `<${Object.prototype.toString.call(image)}>`;
}
