/**
 * Decodes an image input (file path, PNG/JPEG bytes or a sharp instance) with sharp into model
 * pixels: RGB, shorter side resized to the model resolution and centre-cropped, scaled to [−1, 1],
 * CHW Float32Array.
 *
 * @module
 */
import type sharpType from "npm:sharp@0.35.5";
import { loadSharp } from "./sharp.ts";
import { InvalidArgumentError, InvalidImageError } from "../errors.ts";

/** A sharp image pipeline (`sharp(...)`). */
export type SharpImage = ReturnType<typeof sharpType>;

/**
 * An image file (or PNG/JPEG bytes) as the model sees it: CHW data in [−1, 1], resized to cover
 * `width`×`height` and centre-cropped (`fit: "fill"` stretches instead). For overlaying maps on
 * the picture a model was given.
 *
 * @throws {InvalidImageError} for an unreadable image
 *
 * @example
 * ```ts
 * import { readImagePixels } from "./load-image.ts";
 * const pixels = await readImagePixels("fixtures/images/test-16.png", 8, 8);
 * console.assert(pixels.length === 3 * 8 * 8 && pixels.every((v) => v >= -1 && v <= 1));
 * ```
 */
export function readImagePixels(
  image: string | Uint8Array,
  width: number,
  height: number,
  fit: ImageFit = "cover",
): Promise<Float32Array> {
  return loadImagePixels(image, width, height, fit);
}

/** What {@link loadImagePixels} accepts: a file path, PNG/JPEG bytes or a sharp instance. */
export type ImageSource = string | Uint8Array | SharpImage;

/**
 * How an image is brought to the model's size: `"cover"` resizes the shorter side and crops the
 * centre (keeps the aspect ratio, loses the edges); `"fill"` resizes both sides to the size (keeps
 * every pixel, distorts the aspect ratio: what the reference code's protocols do).
 */
export type ImageFit = "cover" | "fill";

/**
 * Loads an image as CHW pixels in [−1, 1] at `width`×`height` (default fit "cover": resize the
 * shorter side, centre crop; "fill": resize both sides, bilinearly).
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
  fit: ImageFit = "cover",
  kernel: ResizeKernel = "linear",
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
      .resize(resizeOptions(width, height, fit, kernel))
      .raw()
      .toBuffer({ resolveWithObject: true });
    data = result.data;
    info = result.info;
  } catch (error) {
    throw new InvalidImageError(
      `${await whyNotDecoded(image, name)}; expected a readable PNG or JPEG`,
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

/**
 * The image resized to exactly `width`×`height` with `fit`, as a sharp pipeline (what ONNX models'
 * `prepare` takes; at that size its own cover-resize changes nothing).
 *
 * @example
 * ```ts
 * import { resizedImage } from "./load-image.ts";
 * const image = await resizedImage("fixtures/images/test-64.png", 32, 16, "fill");
 * console.assert((await image.toBuffer({ resolveWithObject: true })).info.width === 32);
 * ```
 */
export async function resizedImage(
  image: ImageSource,
  width: number,
  height: number,
  fit: ImageFit,
  kernel: ResizeKernel = "linear",
): Promise<SharpImage> {
  const pipeline = isSharp(image) ? image.clone() : (await loadSharp())(image);
  return pipeline.rotate().resize(resizeOptions(width, height, fit, kernel));
}

/**
 * Checks an {@link ImageFit}.
 *
 * @example
 * ```ts
 * import { checkFit } from "./load-image.ts";
 * console.assert(checkFit("fill") === "fill");
 * ```
 */
export function checkFit(fit: unknown): ImageFit {
  if (fit !== "fill" && fit !== "cover") {
    throw new InvalidArgumentError(`fit must be "fill" or "cover", got ${JSON.stringify(fit)}`);
  }
  return fit;
}

/** The interpolation of a "fill" resize: bilinear (COCO protocols) or bicubic (ARO's). */
export type ResizeKernel = "linear" | "cubic";

function resizeOptions(width: number, height: number, fit: ImageFit, kernel: ResizeKernel) {
  return checkFit(fit) === "fill"
    ? { width, height, fit: "fill" as const, kernel }
    : { width, height, fit: "cover" as const, position: "centre" };
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
  if (isSharp(image)) {
    const file = fileOf(image);
    return file === undefined ? "<sharp instance>" : `"${file}" (a sharp pipeline)`;
  }
  return `<${Object.prototype.toString.call(image)}>`;
}

/** The file a path or a sharp pipeline made from a path reads (sharp keeps it in its options). */
function fileOf(image: unknown): string | undefined {
  if (typeof image === "string") return image;
  const file = (image as { options?: { input?: { file?: unknown } } }).options?.input?.file;
  return typeof file === "string" ? file : undefined;
}

/** Why a decode failed, where the file says more than libvips ("is a folder", "does not exist"). */
async function whyNotDecoded(image: ImageSource, name: string): Promise<string> {
  const file = fileOf(image);
  if (file !== undefined) {
    try {
      if ((await Deno.stat(file)).isDirectory) return `image ${name} is a folder, not a file`;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return `image ${name} does not exist`;
    }
  }
  return `could not decode image ${name}`;
}
