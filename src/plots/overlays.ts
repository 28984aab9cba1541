/**
 * Overlays people can read: each word's map over the image at image resolution, labelled with
 * the word and its `nats ± se`, and a grid of all words on one shared colour scale with a colour
 * bar (or each on its own scale), so "a" at 0.08 nats no longer looks as bright as "yellow" at
 * 2.56. Rendered as SVG (labels in DejaVu Sans or any sans-serif font) and rasterised by sharp.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { PerTokenResult, TokenInformation } from "../estimators/results.ts";
import type { ColormapName } from "../images/colormap.ts";
import {
  type ChwImage,
  type ColourRange,
  overlayPng,
  type RgbImage,
  toRgbImage,
} from "../images/png.ts";
import { Figure } from "./figure.ts";
import { svgColourRamp, svgDocument, svgImage, svgText } from "./svg.ts";

/** Options of {@link overlayGrid} and {@link labelledOverlay}. */
export interface OverlayGridOptions {
  /** "shared" (default): every map on one colour scale; "each": every map on its own */
  readonly scale?: "shared" | "each";
  /** weight of the map's colour over the image, in [0, 1] (default 0.6) */
  readonly alpha?: number;
  /** colormap (default viridis) */
  readonly colormap?: ColormapName;
  /** panels per row of the grid (default 4) */
  readonly columns?: number;
  /** width of one grid panel in pixels (default: the image width, at most 256) */
  readonly panelWidth?: number;
}

const LABEL_HEIGHT = 48, BAR_HEIGHT = 46;

/**
 * The colour range shared by the words' maps (the words past the context excluded).
 *
 * @example
 * ```ts
 * import { sharedRange } from "./overlays.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const m = exampleOracle();
 * const r = await m.info(m.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT).samples(8).perToken();
 * const range = sharedRange(r);
 * console.assert(range.max >= range.min);
 * ```
 */
export function sharedRange(result: PerTokenResult): ColourRange {
  const maps = result.tokens.filter((t) => !t.truncated).map((t) => t.map);
  if (maps.length === 0) return { min: 0, max: 0 };
  return {
    min: Math.min(0, ...maps.map((m) => m.min())),
    max: Math.max(...maps.map((m) => m.max())),
  };
}

/**
 * One word's map over the image at the image's resolution, with the word and `nats ± se` below.
 *
 * @example
 * ```ts
 * import { labelledOverlay } from "./overlays.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const m = exampleOracle();
 * const x = m.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const r = await m.info(x).given(EXAMPLE_PROMPT).samples(8).perToken();
 * const figure = await labelledOverlay(r.token("red"), { data: x, shape: [3, 16, 16] });
 * console.assert(figure.png[1] === 0x50 && figure.height === 16 + 48); // "PNG"
 * ```
 */
export async function labelledOverlay(
  token: TokenInformation,
  image: RgbImage | ChwImage,
  options: OverlayGridOptions & { readonly range?: ColourRange } = {},
): Promise<Figure> {
  const base = toRgbImage(image, { clamp: true });
  const overlay = await overlayPng(base, token.map, {
    alpha: options.alpha ?? 0.6,
    colormap: options.colormap,
    range: options.range,
  });
  const width = base.width, height = base.height + LABEL_HEIGHT;
  const svg = svgDocument(width, height, [
    svgImage(overlay, 0, 0, base.width, base.height),
    label(token, 0, base.height, width),
  ]);
  return await Figure.fromSvg(svg, `${token.word}: ${token.estimate}`);
}

/**
 * Every word's overlay in a labelled grid; with `scale: "shared"` one colour bar says what the
 * colours mean in nats per pixel.
 *
 * @throws {InvalidArgumentError} for a bad number of columns or panel width
 *
 * @example
 * ```ts
 * import { overlayGrid } from "./overlays.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const m = exampleOracle();
 * const x = m.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const r = await m.info(x).given(EXAMPLE_PROMPT).samples(8).perToken();
 * const grid = await overlayGrid(r, { data: x, shape: [3, 16, 16] }, { scale: "shared", columns: 3 });
 * console.assert(grid.width === 3 * 128);
 * ```
 */
export async function overlayGrid(
  result: PerTokenResult,
  image: RgbImage | ChwImage,
  options: OverlayGridOptions = {},
): Promise<Figure> {
  const base = toRgbImage(image, { clamp: true });
  const columns = options.columns ?? 4;
  const panel = options.panelWidth ?? Math.min(256, Math.max(base.width, 128));
  if (!Number.isInteger(columns) || columns < 1 || !Number.isInteger(panel) || panel < 16) {
    throw new InvalidArgumentError(
      `overlay grid needs columns ≥ 1 and panelWidth ≥ 16 (integers), got ${columns}, ${panel}`,
    );
  }
  const scale = options.scale ?? "shared";
  const range = scale === "shared" ? sharedRange(result) : undefined;
  const tokens = result.tokens.filter((t) => !t.truncated);
  const panelHeight = Math.round((panel * base.height) / base.width);
  const rows = Math.max(1, Math.ceil(tokens.length / columns));
  const width = panel * Math.min(columns, Math.max(1, tokens.length));
  const gridHeight = rows * (panelHeight + LABEL_HEIGHT);
  const parts: string[] = [];
  for (const [i, token] of tokens.entries()) {
    const x = (i % columns) * panel, y = Math.floor(i / columns) * (panelHeight + LABEL_HEIGHT);
    const overlay = await overlayPng(base, token.map, {
      alpha: options.alpha ?? 0.6,
      colormap: options.colormap,
      range,
    });
    parts.push(
      svgImage(overlay, x, y, panel, panelHeight),
      label(token, x, y + panelHeight, panel),
    );
  }
  const footer = range
    ? await colourBar(range, 0, gridHeight, width, options.colormap)
    : [svgText(8, gridHeight + 28, "each map on its own colour scale (min–max)", { size: 13 })];
  const description = `${result.prompt}: ` +
    tokens.map((t) => `${t.word} ${t.estimate.nats.toFixed(3)} ${t.estimate.seText(3)}`).join(
      ", ",
    );
  return await Figure.fromSvg(
    svgDocument(width, gridHeight + BAR_HEIGHT, [...parts, ...footer]),
    description,
  );
}

function label(token: TokenInformation, x: number, y: number, width: number): string {
  const value = `${token.estimate.nats.toFixed(3)} ${token.estimate.seText(3)} nats`;
  const size = Math.max(12, Math.min(16, Math.floor(width / 10)));
  return `<rect x="${x}" y="${y}" width="${width}" height="${LABEL_HEIGHT}" fill="white"/>` +
    svgText(x + 6, y + size + 4, token.word, { size, weight: "bold", maxWidth: width - 12 }) +
    svgText(x + 6, y + 2 * size + 10, value, { size: size - 2, maxWidth: width - 12 });
}

async function colourBar(
  range: ColourRange,
  x: number,
  y: number,
  width: number,
  colormap?: ColormapName,
): Promise<string[]> {
  const barWidth = Math.max(64, width - 16);
  return [
    `<rect x="${x}" y="${y}" width="${width}" height="${BAR_HEIGHT}" fill="white"/>`,
    await svgColourRamp(colormap ?? "viridis", x + 8, y + 6, barWidth, 12),
    svgText(x + 8, y + 34, `${range.min.toPrecision(3)}`),
    svgText(x + 8 + barWidth, y + 34, `${range.max.toPrecision(3)} nats per pixel (one scale)`, {
      anchor: "end",
    }),
  ];
}
