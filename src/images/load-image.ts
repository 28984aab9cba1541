/**
 * Decodes an image input (file path, PNG/JPEG bytes or a sharp instance) with sharp into model
 * pixels: RGB, brought to the model's size, scaled to [−1, 1], CHW Float32Array. "cover" resizes
 * the shorter side and crops the centre (sharp); "fill" resizes both sides as Pillow does
 * (`pil-resize.ts`), the reference's protocols. A user's photo is turned by its EXIF orientation
 * by default; the studies read their datasets' pixels as stored (`orientation: "stored"`).
 *
 * @module
 */
import type sharpType from "npm:sharp@0.35.5";
import { loadSharp } from "./sharp.ts";
import { InvalidArgumentError, InvalidImageError } from "../errors.ts";
import { type PilFilter, pilResize } from "./pil-resize.ts";

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
 * shorter side, centre crop; "fill": resize both sides with Pillow's `kernel`, bilinear by
 * default), turned by its EXIF orientation unless `orientation` is `"stored"`.
 *
 * @throws {InvalidImageError} for an unreadable image
 * @throws {InvalidArgumentError} for an unknown fit, kernel or orientation
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
  orientation: ImageOrientation = "exif",
): Promise<Float32Array> {
  return hwcBytesToChw(
    await resizedRgb(image, width, height, fit, kernel, orientation),
    width,
    height,
  );
}

/**
 * The image resized to exactly `width`×`height` with `fit`, as a sharp instance of those pixels
 * (what ONNX models' `prepare` takes). It holds the resized pixels, not a pending resize: sharp
 * keeps one resize per pipeline, so `prepare`'s own would replace a pending one, and its EXIF
 * rotation would turn pixels already oriented.
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
  orientation: ImageOrientation = "exif",
): Promise<SharpImage> {
  const rgb = await resizedRgb(image, width, height, fit, kernel, orientation);
  return (await loadSharp())(rgb, { raw: { width, height, channels: 3 } });
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

/**
 * The interpolation of a "fill" resize, Pillow's exactly ({@link pilResize}): bilinear (COCO
 * localization's), bicubic (ARO's) or Lanczos (the intervention's, diffusers' preprocessing).
 * A "cover" resize is sharp's (Lanczos 3).
 */
export type ResizeKernel = "linear" | "cubic" | "lanczos3";

const PIL_FILTERS: Readonly<Record<ResizeKernel, PilFilter>> = {
  linear: "bilinear",
  cubic: "bicubic",
  lanczos3: "lanczos",
};

/**
 * Whether an image's EXIF orientation tag is applied: `"exif"` turns it the way image viewers show
 * it (a user's own photo); `"stored"` keeps the pixels as stored, as PIL's `Image.open` does, the
 * geometry COCO masks and Visual Genome boxes are drawn on (the studies' datasets).
 */
export type ImageOrientation = "exif" | "stored";

/** The image as RGB bytes (row by row, interleaved) at exactly `width`×`height`. */
async function resizedRgb(
  image: ImageSource,
  width: number,
  height: number,
  fit: ImageFit,
  kernel: ResizeKernel,
  orientation: ImageOrientation,
): Promise<Uint8Array> {
  checkFit(fit);
  const filter = PIL_FILTERS[kernel];
  if (!filter) {
    throw new InvalidArgumentError(
      `kernel must be one of ${Object.keys(PIL_FILTERS).join(", ")}, got ${JSON.stringify(kernel)}`,
    );
  }
  if (orientation !== "exif" && orientation !== "stored") {
    throw new InvalidArgumentError(
      `orientation must be "exif" or "stored", got ${JSON.stringify(orientation)}`,
    );
  }
  const name = describeInput(image);
  const pipeline = await openImage(image, name);
  const oriented = orientation === "exif" ? pipeline.rotate() : pipeline;
  if (fit === "fill") {
    // decoded at its own size, then resized as Pillow does (libvips's kernels are not Pillow's)
    const decoded = await decodeRgb(oriented, image, name);
    return pilResize(decoded.data, decoded.width, decoded.height, 3, width, height, filter);
  }
  const cropped = oriented.resize({ width, height, fit: "cover", position: "centre" });
  const decoded = await decodeRgb(cropped, image, name);
  if (decoded.width !== width || decoded.height !== height) {
    throw new InvalidImageError(
      `image ${name} decoded to ${decoded.width}×${decoded.height}; expected ${width}×${height}`,
    );
  }
  return decoded.data;
}

/** A sharp pipeline of the input (a clone for a sharp instance, which stays as it was). */
async function openImage(image: ImageSource, name: string): Promise<SharpImage> {
  if (typeof image === "string") return (await loadSharp())(image);
  if (image instanceof Uint8Array) {
    if (image.length === 0) {
      throw new InvalidImageError(`image ${name} is empty; expected PNG or JPEG bytes`);
    }
    return (await loadSharp())(image);
  }
  if (isSharp(image)) return image.clone();
  throw new InvalidImageError(
    `image ${name} is not a file path, PNG/JPEG bytes or a sharp instance`,
  );
}

/** The pipeline's pixels as 8-bit sRGB without alpha (PIL's `convert("RGB")`). */
async function decodeRgb(
  pipeline: SharpImage,
  image: ImageSource,
  name: string,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  let result: { data: Uint8Array; info: { width: number; height: number; channels: number } };
  try {
    result = await pipeline.toColourspace("srgb").removeAlpha().raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new InvalidImageError(
      `${await whyNotDecoded(image, name)}; expected a readable PNG or JPEG`,
      { cause: error },
    );
  }
  const { data, info } = result;
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new InvalidImageError(
      `image ${name} decoded to ${info.width}×${info.height}×${info.channels} values of ` +
        `${data.length / (info.width * info.height * info.channels)} bytes; expected 8-bit RGB`,
    );
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), ...info };
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
