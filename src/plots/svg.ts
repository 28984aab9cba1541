/**
 * SVG building blocks of the picture figures (labelled overlays, image grids): text, embedded PNG
 * images and the white-backed document, as markup strings that sharp rasterises.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { escapeHtml } from "../jupyter.ts";
import { applyColormap, type ColormapName } from "../images/colormap.ts";
import { rgbToPng } from "../images/png.ts";

/**
 * The figures' font stack (DejaVu Sans is what Debian's librsvg finds; any sans-serif else).
 *
 * @example
 * ```ts
 * import { FIGURE_FONT } from "./svg.ts";
 * console.assert(FIGURE_FONT.includes("sans-serif"));
 * ```
 */
export const FIGURE_FONT = "DejaVu Sans, Verdana, sans-serif";

/** Options of {@link svgText}. */
export interface SvgTextOptions {
  /** font size in px (default 12) */
  readonly size?: number;
  /** font weight (default "normal") */
  readonly weight?: string;
  /** text-anchor (default "start") */
  readonly anchor?: "start" | "middle" | "end";
  /** clip the text with "…" to about this many pixels (an estimate of the glyph widths) */
  readonly maxWidth?: number;
}

/**
 * One line of escaped text.
 *
 * @example
 * ```ts
 * import { svgText } from "./svg.ts";
 * console.assert(svgText(0, 10, "a < b", { maxWidth: 1000 }).includes("a &lt; b"));
 * ```
 */
export function svgText(
  x: number,
  y: number,
  content: string,
  options: SvgTextOptions = {},
): string {
  const size = options.size ?? 12;
  const fits = options.maxWidth === undefined
    ? Infinity
    : Math.floor(options.maxWidth / (0.6 * size));
  const shown = content.length > fits ? content.slice(0, Math.max(1, fits - 1)) + "…" : content;
  return `<text x="${x}" y="${y}" font-family="${FIGURE_FONT}" font-size="${size}" ` +
    `font-weight="${options.weight ?? "normal"}" text-anchor="${options.anchor ?? "start"}" ` +
    `fill="#111">${escapeHtml(shown)}</text>`;
}

/**
 * A PNG embedded at a position and size (nearest-neighbour when librsvg scales it).
 *
 * @example
 * ```ts
 * import { svgImage } from "./svg.ts";
 * console.assert(svgImage(new Uint8Array([1]), 0, 0, 4, 4).includes("base64,AQ=="));
 * ```
 */
export function svgImage(
  png: Uint8Array,
  x: number,
  y: number,
  width: number,
  height: number,
  aspect = "xMidYMid meet",
): string {
  return `<image x="${x}" y="${y}" width="${width}" height="${height}" ` +
    `preserveAspectRatio="${aspect}" style="image-rendering:pixelated" ` +
    `href="data:image/png;base64,${Buffer.from(png).toString("base64")}"/>`;
}

/**
 * A standalone SVG document on a white background holding `parts`.
 *
 * @example
 * ```ts
 * import { svgDocument } from "./svg.ts";
 * console.assert(svgDocument(4, 2, []).startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="4"'));
 * ```
 */
export function svgDocument(width: number, height: number, parts: readonly string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}"><rect width="${width}" height="${height}" fill="white"/>` +
    `${parts.join("")}</svg>`;
}

/**
 * A colour bar's ramp: the colormap from its first to its last colour, as a 256×1 PNG embedded at
 * the given position and size.
 *
 * @example
 * ```ts
 * import { svgColourRamp } from "./svg.ts";
 * console.assert((await svgColourRamp("magma", 0, 0, 64, 8)).startsWith("<image"));
 * ```
 */
export async function svgColourRamp(
  colormap: ColormapName,
  x: number,
  y: number,
  width: number,
  height: number,
): Promise<string> {
  const ramp = applyColormap(Array.from({ length: 256 }, (_, i) => i / 255), colormap);
  return svgImage(await rgbToPng(ramp, 256, 1), x, y, width, height, "none");
}
