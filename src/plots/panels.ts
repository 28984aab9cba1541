/**
 * Labelled picture grids: images, maps and maps over images side by side, each with a label
 * above, an optional caption below, and a colour bar (with its min and max) under every map. The
 * building block of the studies' figures: `imageStrip` for one row (original | reconstruction |
 * edit | change | information), `imageGrid` for several.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { InvalidArgumentError } from "../errors.ts";
import { applyColormap, type ColormapName } from "../images/colormap.ts";
import type { Heatmap } from "../images/heatmap.ts";
import { type ChwImage, type RgbImage, toRgbImage } from "../images/png.ts";
import { loadSharp } from "../images/sharp.ts";
import { Figure } from "./figure.ts";
import { clipText, svgColourRamp, svgDocument, svgImage, svgText, textWidth } from "./svg.ts";
import type { NatsWithError } from "../studies/intervention-result.ts";

/** One picture of a grid. At least one of `image` and `map` is given. */
export interface Panel {
  /** text above the picture */
  readonly label: string;
  /**
   * text below the picture, wrapped to at most 3 lines; an estimate (`{ nats, se }`) is printed
   * "0.81 ± 0.22 nats"
   */
  readonly caption?: string | NatsWithError;
  /** the picture, or the image under the map (RGB bytes or CHW data in [−1, 1]) */
  readonly image?: RgbImage | ChwImage;
  /** a map, min–max normalised and coloured; over `image` when both are given */
  readonly map?: Heatmap;
  /** weight of the map's colour over the image, in [0, 1] (default 0.6) */
  readonly alpha?: number;
  /** colormap of the map (default viridis) */
  readonly colormap?: ColormapName;
  /** unit of the map's values, printed at the end of its colour bar (e.g. "nats/px") */
  readonly unit?: string;
}

/** Options of {@link imageGrid} and {@link imageStrip}. */
export interface PanelGridOptions {
  /** longer side of every picture in pixels (default 160; small images are enlarged pixel-exactly) */
  readonly size?: number;
  /** bold title above the grid */
  readonly title?: string;
  /** one heading per row, above it */
  readonly rowLabels?: readonly string[];
}

const GAP = 10, LABEL = 22, CAPTION_LINE = 15, BAR = 32, TITLE = 30, ROW_LABEL = 22;
const CAPTION_SIZE = 12, CAPTION_LINES = 3;

/**
 * One row of labelled pictures.
 *
 * @throws {InvalidArgumentError} for an empty row, a panel with neither image nor map, a bad
 *   alpha or size
 *
 * @example
 * ```ts
 * import { imageStrip } from "./panels.ts";
 * import { Heatmap } from "../images/heatmap.ts";
 * const image = { width: 4, height: 4, rgb: new Uint8Array(48).fill(200) };
 * const map = new Heatmap(2, 2, new Float32Array([0, 1, 2, 3]));
 * const strip = await imageStrip([{ label: "image", image }, { label: "map", map, image, unit: "nats" }], { size: 64 });
 * console.assert(strip.width === 2 * 64 + 3 * 10);
 * ```
 */
export async function imageStrip(
  panels: readonly Panel[],
  options: PanelGridOptions = {},
): Promise<Figure> {
  return await imageGrid([panels], options);
}

/**
 * Rows of labelled pictures (rows may differ in length), as one PNG figure.
 *
 * @throws {InvalidArgumentError} as {@link imageStrip}, and for `rowLabels` of another length
 *
 * @example
 * ```ts
 * import { imageGrid } from "./panels.ts";
 * const red = { width: 2, height: 2, rgb: new Uint8Array(12).map((_, i) => (i % 3 === 0 ? 255 : 0)) };
 * const grid = await imageGrid([[{ label: "a", image: red }], [{ label: "b", image: red, caption: "red" }]], {
 *   size: 32, rowLabels: ["first", "second"],
 * });
 * console.assert(grid.description.includes("second"));
 * ```
 */
export async function imageGrid(
  rows: readonly (readonly Panel[])[],
  options: PanelGridOptions = {},
): Promise<Figure> {
  const size = options.size ?? 160;
  if (!Number.isInteger(size) || size < 16 || size > 2048) {
    throw new InvalidArgumentError(`panel size must be an integer in [16, 2048], got ${size}`);
  }
  if (rows.length === 0 || rows.some((row) => row.length === 0)) {
    throw new InvalidArgumentError("an image grid needs at least one panel in every row");
  }
  if (options.rowLabels !== undefined && options.rowLabels.length !== rows.length) {
    throw new InvalidArgumentError(
      `rowLabels has ${options.rowLabels.length} entries for ${rows.length} rows; expected one per row`,
    );
  }
  const parts: string[] = [];
  let y = GAP + (options.title ? TITLE : 0);
  let width = 0;
  for (const [r, row] of rows.entries()) {
    if (options.rowLabels) {
      parts.push(svgText(GAP, y + 15, options.rowLabels[r], { size: 14, weight: "bold" }));
      y += ROW_LABEL;
    }
    const pictures = await Promise.all(row.map((panel) => panelPicture(panel, size)));
    const pictureHeight = Math.max(...pictures.map((p) => p.height));
    const captions = row.map((panel, i) =>
      panel.caption === undefined
        ? []
        : wrap(captionText(panel.caption), Math.max(size, pictures[i].width), CAPTION_SIZE)
    );
    const captionHeight = Math.max(...captions.map((lines) => lines.length)) * CAPTION_LINE +
      (captions.some((lines) => lines.length > 0) ? 4 : 0);
    const hasBar = row.some((p) => p.map !== undefined);
    let x = GAP;
    for (const [i, panel] of row.entries()) {
      const picture = pictures[i];
      const cellWidth = Math.max(size, picture.width);
      parts.push(
        // a label may run into half the gap to the next cell, so two labels keep 5 px apart
        svgText(x, y + 16, panel.label, {
          size: 13,
          weight: "bold",
          maxWidth: cellWidth + GAP / 2,
        }),
      );
      parts.push(svgImage(picture.png, x, y + LABEL, picture.width, picture.height));
      let below = y + LABEL + pictureHeight;
      captions[i].forEach((line, k) => {
        parts.push(svgText(x, below + 14 + k * CAPTION_LINE, line, { size: CAPTION_SIZE }));
      });
      below += captionHeight;
      if (panel.map !== undefined) {
        parts.push(...await colourBar(panel, picture.range, x, below, cellWidth));
      }
      x += cellWidth + GAP;
    }
    width = Math.max(width, x);
    y += LABEL + pictureHeight + captionHeight + (hasBar ? BAR : 0) + GAP;
  }
  if (options.title) {
    parts.push(svgText(GAP, GAP + 18, options.title, { size: 15, weight: "bold" }));
  }
  return await Figure.fromSvg(svgDocument(width, y, parts), describe(rows, options));
}

/** A panel's pixels at display size, and the value range its colours stand for. */
interface Picture {
  readonly png: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly range: { readonly min: number; readonly max: number };
}

async function panelPicture(panel: Panel, size: number): Promise<Picture> {
  const alpha = panel.alpha ?? 0.6;
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new InvalidArgumentError(
      `panel "${panel.label}": alpha must lie in [0, 1], got ${alpha}`,
    );
  }
  const base = panel.image === undefined ? undefined : toRgbImage(panel.image, { clamp: true });
  if (base === undefined && panel.map === undefined) {
    throw new InvalidArgumentError(`panel "${panel.label}" has neither an image nor a map`);
  }
  let rgb: RgbImage, range = { min: 0, max: 0 };
  if (panel.map === undefined) rgb = base!;
  else {
    const shown = base ? panel.map.upsample(base.width, base.height) : panel.map;
    range = { min: shown.min(), max: shown.max() };
    const colours = applyColormap(shown.normalize(), panel.colormap ?? "viridis");
    if (base) {
      for (let i = 0; i < colours.length; i++) {
        colours[i] = Math.round((1 - alpha) * base.rgb[i] + alpha * colours[i]);
      }
    }
    rgb = { width: shown.width, height: shown.height, rgb: colours };
  }
  const scale = size / Math.max(rgb.width, rgb.height);
  const width = Math.max(1, Math.round(rgb.width * scale));
  const height = Math.max(1, Math.round(rgb.height * scale));
  const sharp = await loadSharp();
  // nearest neighbour when enlarging keeps the model's pixels visible; lanczos when shrinking
  const png = await sharp(Buffer.from(rgb.rgb), {
    raw: { width: rgb.width, height: rgb.height, channels: 3 },
  }).resize(width, height, { kernel: scale >= 1 ? "nearest" : "lanczos3", fit: "fill" }).png()
    .toBuffer();
  return { png: new Uint8Array(png), width, height, range };
}

async function colourBar(
  panel: Panel,
  range: { min: number; max: number },
  x: number,
  y: number,
  width: number,
): Promise<string[]> {
  const unit = panel.unit ? ` ${panel.unit}` : "";
  return [
    await svgColourRamp(panel.colormap ?? "viridis", x, y + 4, width, 8),
    svgText(x, y + 26, number(range.min, range), { size: 11 }),
    svgText(x + width, y + 26, number(range.max, range) + unit, { size: 11, anchor: "end" }),
  ];
}

/** A colour-bar end: 3 significant digits; "0" for a value that is rounding noise of the range. */
function number(v: number, range: { min: number; max: number }): string {
  const scale = Math.max(Math.abs(range.min), Math.abs(range.max));
  if (Math.abs(v) <= 1e-6 * scale || v === 0) return "0";
  return formatValue(v);
}

/**
 * Three significant digits, in exponent form outside [0.01, 10⁴); zero as "0".
 *
 * @example
 * ```ts
 * import { formatValue } from "./panels.ts";
 * console.assert(formatValue(0.0000125) === "1.25e-5" && formatValue(271.3) === "271");
 * ```
 */
export function formatValue(v: number): string {
  if (v === 0) return "0";
  return Math.abs(v) >= 0.01 && Math.abs(v) < 1e4 ? v.toPrecision(3) : v.toExponential(2);
}

function captionText(caption: string | NatsWithError): string {
  return typeof caption === "string"
    ? caption
    : `${caption.nats.toFixed(2)} ± ${caption.se.toFixed(2)} nats`;
}

/**
 * Word-wrapped lines that fit `width` pixels as {@link textWidth} measures them, at most
 * {@link CAPTION_LINES} (the last clipped).
 */
function wrap(content: string, width: number, size: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of content.split(/\s+/).filter(Boolean)) {
    if (line === "" || textWidth(line + " " + word, size) <= width) {
      line = line === "" ? word : `${line} ${word}`;
    } else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== "") lines.push(line);
  const shown = lines.slice(0, CAPTION_LINES);
  if (lines.length > CAPTION_LINES) {
    shown[CAPTION_LINES - 1] += " " + lines.slice(CAPTION_LINES).join(" ");
  }
  return shown.map((l) => clipText(l, width, size));
}

function describe(rows: readonly (readonly Panel[])[], options: PanelGridOptions): string {
  const lines = rows.map((row, r) =>
    (options.rowLabels ? `${options.rowLabels[r]}: ` : "") +
    row.map((p) => p.caption !== undefined ? `${p.label} (${captionText(p.caption)})` : p.label)
      .join(" | ")
  );
  return [...(options.title ? [options.title] : []), ...lines].join("\n");
}
