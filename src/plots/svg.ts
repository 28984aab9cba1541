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
import { GLYPH_CHARS, GLYPH_EM, GLYPH_WIDTHS_BOLD, GLYPH_WIDTHS_NORMAL } from "./glyph-widths.ts";

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
  readonly weight?: "normal" | "bold";
  /** text-anchor (default "start") */
  readonly anchor?: "start" | "middle" | "end";
  /** clip the text with "…" to at most this many pixels, as {@link textWidth} measures it */
  readonly maxWidth?: number;
}

/** Each measured character's advance in em, per weight. */
const ADVANCES = {
  normal: advanceTable(GLYPH_WIDTHS_NORMAL),
  bold: advanceTable(GLYPH_WIDTHS_BOLD),
};

function advanceTable(widths: readonly number[]): { em: Map<string, number>; widest: number } {
  const em = new Map([...GLYPH_CHARS].map((ch, i) => [ch, widths[i] / GLYPH_EM]));
  // a character the table lacks counts as the widest printable ASCII glyph, so a measure never
  // falls short of what is drawn
  const ascii = [...GLYPH_CHARS].filter((ch) => ch <= "~");
  const widest = Math.max(...ascii.map((ch) => em.get(ch)!));
  return { em, widest };
}

/**
 * The width in pixels of a line of text in the figure font (DejaVu Sans, whose advance widths
 * `tools/glyph_widths.py` reads from the font files) at `size` pixels, without kerning; a
 * character outside the table counts as the widest ASCII glyph.
 *
 * @example
 * ```ts
 * import { textWidth } from "./svg.ts";
 * // "i" is narrow and "W" wide: the old estimate of 0.6 em per character fitted neither
 * console.assert(textWidth("iiii", 10) < textWidth("WWWW", 10) / 2);
 * console.assert(Math.abs(textWidth("WWWW", 10) - 4 * 10 * 2025 / 2048) < 1e-9);
 * ```
 */
export function textWidth(
  content: string,
  size: number,
  weight: "normal" | "bold" = "normal",
): number {
  const { em, widest } = ADVANCES[weight];
  let total = 0;
  for (const ch of content) total += em.get(ch) ?? widest;
  return total * size;
}

/**
 * The longest start of `content` that fits `maxWidth` pixels, ending in "…" when cut (at least one
 * character and the ellipsis, so a label never vanishes).
 *
 * @example
 * ```ts
 * import { clipText, textWidth } from "./svg.ts";
 * console.assert(clipText("a red circle", 1000, 12) === "a red circle");
 * const cut = clipText("a red circle below a yellow square", 80, 12);
 * console.assert(cut.endsWith("…") && textWidth(cut, 12) <= 80);
 * ```
 */
export function clipText(
  content: string,
  maxWidth: number,
  size: number,
  weight: "normal" | "bold" = "normal",
): string {
  if (textWidth(content, size, weight) <= maxWidth) return content;
  // characters one by one while they and the ellipsis still fit
  const room = maxWidth - textWidth("…", size, weight);
  const chars = [...content];
  let kept = 0, width = 0;
  while (kept < chars.length - 1) {
    width += textWidth(chars[kept], size, weight);
    if (width > room) break;
    kept++;
  }
  return chars.slice(0, Math.max(1, kept)).join("").trimEnd() + "…";
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
  const shown = options.maxWidth === undefined
    ? content
    : clipText(content, options.maxWidth, size, options.weight ?? "normal");
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
