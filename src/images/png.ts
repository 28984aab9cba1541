/**
 * PNG output with sharp: coloured heatmaps, heatmaps blended over images, plain RGB images, and
 * conversion of CHW model images in [−1, 1] to 8-bit RGB.
 *
 * @module
 */
import { loadSharp } from "./sharp.ts";
import { dirname } from "node:path";
import { InvalidArgumentError, InvalidImageError } from "../errors.ts";
import { applyColormap, type ColormapName } from "./colormap.ts";
import { Heatmap } from "./heatmap.ts";

/** An 8-bit RGB image: interleaved R G B bytes, rows top to bottom. */
export interface RgbImage {
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
  /** `width·height·3` bytes. */
  rgb: Uint8Array;
}

/** A model-space image: CHW Float32Array with values in [−1, 1] and its shape. */
export interface ChwImage {
  /** Values in CHW order. */
  data: Float32Array;
  /** `[channels, height, width]`; channels must be 1 (grey) or 3 (RGB). */
  shape: readonly [number, number, number];
}

/** Options of {@link heatmapToPng}. */
export interface HeatmapPngOptions {
  /** Colormap (default `"viridis"`). */
  colormap?: ColormapName;
  /** Output width; give with `height` to upsample bilinearly first (default: the map's width). */
  width?: number;
  /** Output height; give with `width` (default: the map's height). */
  height?: number;
  /**
   * the values that map to the colormap's ends (default: the map's own min and max). Give one
   * range to several maps to colour them on a shared scale; a value outside it is an error.
   */
  range?: ColourRange;
}

/** The values at the two ends of a colormap. */
export interface ColourRange {
  /** value shown as the lowest colour */
  readonly min: number;
  /** value shown as the highest colour */
  readonly max: number;
}

/** Options of {@link overlayPng}. */
export interface OverlayOptions {
  /** Weight of the heatmap colour in the blend, in [0, 1] (default 0.5). */
  alpha?: number;
  /** Colormap (default `"viridis"`). */
  colormap?: ColormapName;
  /** the values at the colormap's ends (default: the map's own min and max); see {@link ColourRange} */
  range?: ColourRange;
}

/** Options of {@link chwToRgb}. */
export interface ChwToRgbOptions {
  /**
   * Clamp values outside [−1, 1] (e.g. a VAE decoder's slight overshoot) instead of throwing
   * (default false: out-of-range values are an error).
   */
  clamp?: boolean;
}

/**
 * Encodes 8-bit RGB pixels as PNG.
 *
 * @throws {InvalidArgumentError} for a bad size or a wrong number of bytes
 *
 * @example
 * ```ts
 * import { rgbToPng } from "./png.ts";
 * const png = await rgbToPng(new Uint8Array([255, 0, 0]), 1, 1);
 * console.assert(png[1] === 0x50); // "P" of the PNG signature
 * ```
 */
export async function rgbToPng(
  rgb: Uint8Array,
  width: number,
  height: number,
): Promise<Uint8Array> {
  requireSize(width, height, "image");
  if (!(rgb instanceof Uint8Array) || rgb.length !== width * height * 3) {
    throw new InvalidArgumentError(
      `RGB data must be a Uint8Array of width·height·3 = ${width * height * 3} bytes, got ${
        rgb instanceof Uint8Array ? `${rgb.length} bytes` : Object.prototype.toString.call(rgb)
      }`,
    );
  }
  const buffer = await (await loadSharp())(rgb, { raw: { width, height, channels: 3 } }).png()
    .toBuffer();
  return new Uint8Array(buffer);
}

/**
 * Converts a CHW image with values in [−1, 1] to 8-bit interleaved RGB: `round((v + 1)/2 · 255)`.
 * One channel becomes grey, three channels RGB. Other channel counts (e.g. Stable Diffusion's
 * 4-channel latents) have no colour meaning and throw: visualise an information map instead.
 *
 * @param data CHW values
 * @param channels 1 or 3
 * @param height rows
 * @param width columns
 * @param options `clamp`: clamp values outside [−1, 1] instead of throwing
 * @throws {InvalidArgumentError} for another channel count or a bad size
 * @throws {InvalidImageError} for a wrong data length, non-finite or out-of-range values
 *
 * @example
 * ```ts
 * import { chwToRgb } from "./png.ts";
 * const rgb = chwToRgb(new Float32Array([-1, 1]), 1, 1, 2);
 * console.assert(rgb.join() === "0,0,0,255,255,255");
 * ```
 */
export function chwToRgb(
  data: Float32Array,
  channels: number,
  height: number,
  width: number,
  options: ChwToRgbOptions = {},
): Uint8Array {
  if (channels !== 1 && channels !== 3) {
    throw new InvalidArgumentError(
      `cannot show a ${channels}-channel image as pixels: expected 1 (grey) or 3 (RGB) channels; ` +
        "for latents (e.g. 4 channels) visualise an information map (Heatmap) instead",
    );
  }
  requireSize(width, height, "image");
  if (data.length !== channels * height * width) {
    throw new InvalidImageError(
      `CHW image has ${data.length} values, expected ${channels}·${height}·${width} = ${
        channels * height * width
      }`,
    );
  }
  const plane = height * width;
  const rgb = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const source = channels === 1 ? 0 : c * plane;
    for (let p = 0; p < plane; p++) {
      rgb[3 * p + c] = toByte(data[source + p], source + p, options.clamp ?? false);
    }
  }
  return rgb;
}

/** One value in [−1, 1] → 0 … 255. */
function toByte(value: number, index: number, clamp: boolean): number {
  if (!Number.isFinite(value)) {
    throw new InvalidImageError(
      `image value at index ${index} is ${value}, expected a finite number`,
    );
  }
  if (value < -1 || value > 1) {
    if (!clamp) {
      throw new InvalidImageError(
        `image value at index ${index} is ${value}, expected [−1, 1] (pass { clamp: true } to clamp)`,
      );
    }
    value = Math.max(-1, Math.min(1, value));
  }
  return Math.round((value + 1) * 127.5);
}

/**
 * Renders a heatmap as a PNG: upsampled bilinearly to `width`×`height` if given, min–max
 * normalised (a constant map shows as the colormap's lowest colour), then coloured.
 *
 * @throws {InvalidArgumentError} when only one of width/height is given or a size is bad
 *
 * @example
 * ```ts
 * import { Heatmap } from "./heatmap.ts";
 * import { heatmapToPng } from "./png.ts";
 * const map = new Heatmap(2, 2, new Float32Array([0, 1, 2, 3]));
 * const png = await heatmapToPng(map, { width: 64, height: 64, colormap: "magma" });
 * console.assert(png.length > 0);
 * ```
 */
export async function heatmapToPng(
  map: Heatmap,
  options: HeatmapPngOptions = {},
): Promise<Uint8Array> {
  const { width, height } = options;
  if ((width === undefined) !== (height === undefined)) {
    throw new InvalidArgumentError(
      `give both width and height or neither, got width=${width}, height=${height}`,
    );
  }
  const sized = width === undefined || height === undefined ? map : map.upsample(width, height);
  const rgb = applyColormap(scaled(sized, options.range), options.colormap ?? "viridis");
  return await rgbToPng(rgb, sized.width, sized.height);
}

/**
 * Blends a coloured heatmap over an image: the map is upsampled bilinearly to the image size,
 * min–max normalised and coloured, then each pixel is `(1 − alpha)·image + alpha·colour`.
 *
 * @param image an RGB image, or a CHW image in [−1, 1] with 1 or 3 channels
 * @param map the heatmap (any size; usually the latent resolution)
 * @param options `alpha` (default 0.5) and `colormap` (default viridis)
 * @throws {InvalidArgumentError} for alpha outside [0, 1] or a bad image size
 * @throws {InvalidImageError} for malformed image data
 *
 * @example
 * ```ts
 * import { Heatmap } from "./heatmap.ts";
 * import { overlayPng } from "./png.ts";
 * const image = { width: 8, height: 8, rgb: new Uint8Array(8 * 8 * 3).fill(128) };
 * const map = new Heatmap(2, 2, new Float32Array([0, 1, 1, 0]));
 * const png = await overlayPng(image, map, { alpha: 0.4 });
 * console.assert(png.length > 0);
 * ```
 */
export async function overlayPng(
  image: RgbImage | ChwImage,
  map: Heatmap,
  options: OverlayOptions = {},
): Promise<Uint8Array> {
  const alpha = options.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new InvalidArgumentError(`overlay alpha must lie in [0, 1], got ${alpha}`);
  }
  const base = toRgbImage(image);
  const colours = applyColormap(
    scaled(map.upsample(base.width, base.height), options.range),
    options.colormap ?? "viridis",
  );
  const blended = new Uint8Array(colours.length);
  for (let i = 0; i < blended.length; i++) {
    blended[i] = Math.round((1 - alpha) * base.rgb[i] + alpha * colours[i]);
  }
  return await rgbToPng(blended, base.width, base.height);
}

/**
 * The map's values on [0, 1]: min–max of its own, or of the given range (a shared scale).
 *
 * @throws {InvalidArgumentError} for a range that is not finite and increasing, or a value outside it
 */
function scaled(map: Heatmap, range?: ColourRange): Heatmap {
  if (!range) return map.normalize();
  const { min, max } = range;
  if (!Number.isFinite(min) || !Number.isFinite(max) || !(max >= min)) {
    throw new InvalidArgumentError(
      `colour range must be finite with max ≥ min, got [${min}, ${max}]`,
    );
  }
  const span = max - min, slack = 1e-6 * Math.max(1, Math.abs(min), Math.abs(max));
  const out = new Float32Array(map.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = map.data[i];
    if (v < min - slack || v > max + slack) {
      throw new InvalidArgumentError(
        `map value ${v} lies outside the colour range [${min}, ${max}]; expected a range that ` +
          `covers every map drawn on it`,
      );
    }
    out[i] = span > 0 ? Math.min(1, Math.max(0, (v - min) / span)) : 0;
  }
  return new Heatmap(map.width, map.height, out);
}

/**
 * Either image form as validated RGB; `clamp` as in {@link chwToRgb} for CHW data.
 *
 * @throws {InvalidImageError} for malformed image data
 *
 * @example
 * ```ts
 * import { toRgbImage } from "./png.ts";
 * const rgb = toRgbImage({ data: new Float32Array([-2, 0, 1]), shape: [3, 1, 1] }, { clamp: true });
 * console.assert(rgb.rgb[0] === 0 && rgb.rgb[2] === 255);
 * ```
 */
export function toRgbImage(image: RgbImage | ChwImage, options: ChwToRgbOptions = {}): RgbImage {
  if ("shape" in image) {
    const [channels, height, width] = image.shape;
    return { width, height, rgb: chwToRgb(image.data, channels, height, width, options) };
  }
  requireSize(image.width, image.height, "image");
  if (!(image.rgb instanceof Uint8Array) || image.rgb.length !== image.width * image.height * 3) {
    throw new InvalidImageError(
      `RGB image must hold width·height·3 = ${
        image.width * image.height * 3
      } bytes, got ${image.rgb?.length}`,
    );
  }
  return image;
}

/**
 * Writes PNG bytes to a file, creating missing parent folders.
 *
 * @example
 * ```ts
 * import { rgbToPng, writePng } from "./png.ts";
 * const path = await Deno.makeTempDir() + "/a/b/red.png";
 * await writePng(path, await rgbToPng(new Uint8Array([255, 0, 0]), 1, 1));
 * console.assert((await Deno.stat(path)).isFile);
 * ```
 */
export async function writePng(path: string, bytes: Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeFile(path, bytes);
}

function requireSize(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
    throw new InvalidArgumentError(
      `${what} size must be positive integers, got width=${width}, height=${height}`,
    );
  }
}
