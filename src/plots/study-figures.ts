/**
 * The studies' picture figures, as plain functions of their results: a localization gallery
 * (image | mask | information | attention per row), an intervention strip (original |
 * reconstruction | edit | change | information), and a table of relation items with their images.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import type { Denoiser } from "../models/denoiser.ts";
import { toPixels } from "../generation/ddim.ts";
import type { Heatmap } from "../images/heatmap.ts";
import { type ImageFit, loadImagePixels } from "../images/load-image.ts";
import type { ChwImage } from "../images/png.ts";
import type { LocalizationResult } from "../studies/localization-result.ts";
import type { RelationsResult } from "../studies/relations-result.ts";
import type { InterventionCase } from "../studies/intervention.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Figure } from "./figure.ts";
import { formatValue, imageGrid, imageStrip, type Panel } from "./panels.ts";
import { resultTable, type Table } from "./table.ts";

/** Options of the study figures that load the study's images from disk. */
export interface StudyFigureOptions {
  /** folder that relative image paths of the results are relative to (default: as stored) */
  readonly imagesDir?: string;
  /** how many rows or items to show (default 6) */
  readonly count?: number;
  /** longer side of every picture in pixels (default 128) */
  readonly size?: number;
}

/**
 * The first rows of a localization study run with `keepMaps: true`: the image, the
 * ground-truth mask over it, and every computed map (min–max normalised, as the IoUs see them)
 * over it, one row per (image, word) with its IoU at the fixed threshold.
 *
 * @throws {InvalidArgumentError} when the result kept no maps (run the study with `keepMaps: true`)
 *
 * @example
 * ```ts
 * import { localizationGallery } from "./study-figures.ts";
 * import { LocalizationResult } from "../studies/localization-result.ts";
 * import { Heatmap } from "../images/heatmap.ts";
 * const record = { image: "test-16.png", caption: "a red circle", word: "red", category: "circle",
 *   context: "a circle", nats: 1, se: 0.1, seed: 7, maskArea: 4, pixels: 16, thresholds: [0.4],
 *   ious: { information: [0.5] } };
 * const map = new Heatmap(4, 4, Float32Array.from({ length: 16 }, (_, i) => i / 15));
 * const result = new LocalizationResult({
 *   run: { results: [{ id: "a", result: record }], failures: [], resumed: 0, total: 1 },
 *   methods: ["information"], thresholds: [0.4], fixedThreshold: 0.4, unavailable: new Map(),
 *   maps: new Map([["a", { information: map, mask: map }]]), samples: 10, model: "m",
 * });
 * const figure = await localizationGallery(result, { imagesDir: "fixtures/images", size: 32 });
 * console.assert(figure.description.includes("information (IoU 0.50)"));
 * ```
 */
export async function localizationGallery(
  result: LocalizationResult,
  options: StudyFigureOptions = {},
): Promise<Figure> {
  const size = options.size ?? 128;
  const rows = result.rows.filter((row) => result.maps(row.id) !== undefined)
    .slice(0, options.count ?? 6);
  if (rows.length === 0) {
    throw new InvalidArgumentError(
      "this localization result kept no maps; run the study with keepMaps: true to draw them",
    );
  }
  // the stored thresholds are a float grid: the one nearest the fixed threshold
  const at = nearestIndex(result.thresholds, result.fixedThreshold);
  const grid: Panel[][] = [];
  const labels: string[] = [];
  for (const row of rows) {
    const maps = result.maps(row.id)!;
    const image = await studyImage(row.image, maps.mask, size, options.imagesDir, result.fit);
    const iou = (method: keyof typeof row.ious) =>
      row.ious[method] ? `IoU ${row.ious[method]![at].toFixed(2)}` : undefined;
    const map = (label: string, m: Heatmap | undefined, method: keyof typeof row.ious) =>
      m === undefined ? [] : [{ label, map: m, image, caption: iou(method) }];
    grid.push([
      { label: "image", image },
      { label: "mask", map: maps.mask, image, alpha: 0.5, caption: `${row.maskArea} px` },
      ...map("information", maps.information, "information"),
      ...map("attention", maps.attention, "attention"),
      ...map("attention at α", maps.attentionAtSampledNoise, "attention-at-sampled-noise"),
      ...map("combined", maps.combined, "infodiff-combined"),
      ...map("ConceptAttention", maps.conceptAttention, "concept-attention"),
    ]);
    labels.push(
      `"${row.word}" in "${row.caption}" (${row.nats.toFixed(2)} ± ${row.se.toFixed(2)} nats)`,
    );
  }
  return await imageGrid(grid, {
    size,
    rowLabels: labels,
    title: `maps min–max normalised; IoU at threshold ${result.fixedThreshold}`,
  });
}

/**
 * One intervention as a strip: original | reconstruction (same caption) | edit (word removed) |
 * change (edit vs reconstruction) | the word's information map | its attention map (when run),
 * in pixels (latents decoded by the model's VAE).
 *
 * @example
 * ```ts
 * import { interventionStrip } from "./study-figures.ts";
 * import { interveneOne } from "../studies/intervention.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const one = await interveneOne(model, { image, caption: EXAMPLE_PROMPT, word: "red" }, { steps: 5, samples: 8 });
 * const strip = await interventionStrip(model, one, { size: 64 });
 * console.assert(strip.description.includes("change"));
 * ```
 */
export async function interventionStrip(
  model: Denoiser,
  one: InterventionCase,
  options: { readonly size?: number } = {},
): Promise<Figure> {
  // pixels are the model's data, or for latent models the VAE's image of imageSize
  const { width, height } = model.imageSize ?? { width: model.shape[2], height: model.shape[1] };
  const pixels = async (data: Float32Array): Promise<ChwImage> => {
    const out = await toPixels(model, data);
    return { data: out, shape: [out.length / (width * height), height, width] as const };
  };
  const [original, reconstruction, edited] = await Promise.all(
    [one.original, one.reconstruction, one.edited].map(pixels),
  );
  const { record } = one;
  const information = record.informationOrthogonal ?? record.information;
  const panels: Panel[] = [
    { label: "original", image: original },
    { label: "reconstruction", image: reconstruction },
    { label: "edit", image: edited },
    {
      label: "change",
      map: one.changeMap,
      colormap: "magma",
      caption: `Σ ${formatValue(record.change)}`,
    },
    {
      label: "information",
      map: one.informationMap,
      image: original,
      caption: `${information.nats.toFixed(2)} ± ${information.se.toFixed(2)} nats`,
      unit: "nats/px",
    },
    ...(one.attentionMap ? [{ label: "attention", map: one.attentionMap, image: original }] : []),
  ];
  return await imageStrip(panels, {
    size: options.size ?? 128,
    // a swap generates from its replacement, an omission from the context itself
    title: `${record.edited === record.context ? "remove" : "swap"} "${record.word}": ` +
      `"${record.caption}" → "${record.edited}"`,
  });
}

/**
 * The first items of a relation study: the image, every option with its i(x; option) ± SE (the
 * chosen one marked ▶, the true one ✓), and whether the study got it right.
 *
 * @example
 * ```ts
 * import { relationItemsTable } from "./study-figures.ts";
 * import { RelationsResult } from "../studies/relations-result.ts";
 * const record = { image: "fixtures/images/test-16.png", trueIndex: 1, kind: "relation", group: "above",
 *   options: ["a b", "b a"], chosen: 1, correct: true, nats: [0.5, 1], se: [0.1, 0.1], refused: [], seed: 1 };
 * const result = new RelationsResult({ results: [{ id: "x", result: record }], failures: [], resumed: 0, total: 1 }, 10, "m");
 * const table = await relationItemsTable(result);
 * console.assert(String(table).includes("▶ b a: 1.00 ± 0.10 ✓"));
 * ```
 */
export async function relationItemsTable(
  result: RelationsResult,
  options: StudyFigureOptions = {},
): Promise<Table> {
  const size = options.size ?? 96;
  const rows = [];
  for (const item of result.items.slice(0, options.count ?? 6)) {
    const image = await imageStrip([{
      label: item.group,
      image: await loadChw(item.image, size, size, options.imagesDir),
    }], { size });
    const lines = item.options.map((option, k) => {
      const value = item.nats[k] === null
        ? "refused (−∞)"
        : `${item.nats[k]!.toFixed(2)} ± ${item.se[k]!.toFixed(2)}`;
      return `${k === item.chosen ? "▶ " : "  "}${option}: ${value}${
        k === item.trueIndex ? " ✓" : ""
      }`;
    });
    rows.push({
      image,
      "options: i(x; option) in nats": lines.join("\n"),
      right: item.correct ? "yes" : "no",
    });
  }
  if (rows.length === 0) {
    throw new InvalidArgumentError("this relation result has no items to show");
  }
  return resultTable(rows, { title: `${result.model}: ▶ chosen, ✓ true caption` });
}

/**
 * A study's dataset image as the model saw it: at the map's aspect ratio, brought there with the
 * study's `fit` (a mask drawn under "fill" lies on the squashed image, not on a centre crop) and
 * read as stored, as the studies read it (a mask or box is drawn on the stored pixels).
 */
async function studyImage(
  path: string,
  like: Heatmap,
  size: number,
  dir?: string,
  fit: ImageFit = "cover",
): Promise<ChwImage> {
  const scale = size / Math.max(like.width, like.height);
  return await loadChw(
    path,
    Math.round(like.width * scale),
    Math.round(like.height * scale),
    dir,
    fit,
  );
}

/** A dataset image at `width`×`height`, read as stored (no EXIF turn), as the studies read it. */
async function loadChw(
  path: string,
  width: number,
  height: number,
  dir?: string,
  fit: ImageFit = "cover",
): Promise<ChwImage> {
  const file = dir !== undefined && !isAbsolute(path) ? join(dir, path) : path;
  const data = await loadImagePixels(file, width, height, fit, "linear", "stored");
  return { data, shape: [3, height, width] as const };
}

function nearestIndex(values: readonly number[], target: number): number {
  let best = 0;
  values.forEach((v, i) => {
    if (Math.abs(v - target) < Math.abs(values[best] - target)) best = i;
  });
  return best;
}
