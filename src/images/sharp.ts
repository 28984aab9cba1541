/**
 * sharp (libvips), imported on first use: decoding images and rasterising SVG need it, but
 * importing the package must not load a native library (a query on an oracle needs none).
 *
 * @module
 */
import type sharpType from "npm:sharp@0.35.5";

/** The `sharp` function. */
export type Sharp = typeof sharpType;

let loading: Promise<Sharp> | undefined;

/**
 * The sharp function, importing the native library on the first call.
 *
 * @example
 * ```ts
 * import { loadSharp } from "./sharp.ts";
 * const sharp = await loadSharp();
 * const meta = await sharp({ create: { width: 2, height: 1, channels: 3, background: "#000" } }).png().toBuffer();
 * console.assert(meta.length > 0);
 * ```
 */
export function loadSharp(): Promise<Sharp> {
  loading ??= import("npm:sharp@0.35.5").then((module) => module.default);
  return loading;
}
