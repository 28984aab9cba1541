/**
 * Prompt intervention (Kong et al., REFERENCE §8): invert an image with its caption by
 * deterministic DDIM, regenerate it from the same x_T with one word removed (or swapped), and ask
 * whether the word's conditional information predicts how much — and where — the image changes.
 *
 * Per item:
 * - x_T = DDIM inversion of the image under its caption;
 * - reconstruction = DDIM from x_T under the unchanged caption, edited = DDIM from x_T under the
 *   caption with the word removed at word boundaries (or replaced by `replacement`); both run in
 *   the same batched calls, so a word the model ignores gives a change of exactly 0;
 * - change map = Σ over channels of (edited − reconstruction)², at data resolution (latent h×w for
 *   Stable Diffusion); the change is its sum. Comparing with the reconstruction rather than with the
 *   original image removes the inversion error from the change;
 * - the word's conditional information i(x; w | caption without w) on the original data, as a
 *   number and a map, with the same removal (`placeholder`) as the edit;
 * - the word's DAAM attention map (src/attention, gathered along the DDIM inversion by default),
 *   when the model supports attention; otherwise the attention row says "unavailable".
 *
 * Across items: Pearson r between change and information, at image level (one pair per item) and
 * at pixel level. Pixel level is computed per item (r between the item's change map and its
 * information map) and then averaged over items; items whose maps are constant (a word that
 * changes nothing) have no r and are counted as excluded. REFERENCE §8 does not say how the paper
 * pools pixels; per-item averaging keeps one image's overall magnitude from dominating "where"
 * the change happens. The pooled r over all pixels of all items is reported beside it. Standard
 * errors are bootstrap standard deviations over resampled items.
 *
 * @module
 */
import type { StudyFailure } from "./runner.ts";
import { type AttentionProvider, studyAttention } from "../attention/provider.ts";
import { InvalidArgumentError } from "../errors.ts";
import { conditionalInformation } from "../estimators/conditional-information.ts";
import type { EstimatorOptions } from "../estimators/options.ts";
import { ddimBatch } from "../generation/ddim.ts";
import { Heatmap } from "../images/heatmap.ts";
import { escapeHtml, JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import { removeWord } from "../text/prompt.ts";
import { bootstrap, pearson } from "../numerics/statistics.ts";
import type { Chart } from "../plots/chart.ts";
import { scatterPlot } from "../plots/scatter-plot.ts";
import { runStudy, type Shard, type StudyProgress } from "./runner.ts";

/** One intervention: an image, its caption and the word to remove or swap. */
export interface InterventionItem {
  /** a unique id (default: `caption | word`, with ` -> replacement` when swapping) */
  readonly id?: string;
  /** the image: model data, or for image models a path, PNG/JPEG bytes or a sharp instance */
  readonly image: ImageInput;
  /** the image's caption */
  readonly caption: string;
  /** the word of the caption to intervene on */
  readonly word: string;
  /** swap the word for this one instead of removing it */
  readonly replacement?: string;
  /** which occurrence of the word (default 0: the first) */
  readonly occurrence?: number;
}

/** Options of {@link intervene} and {@link interveneOne}. */
export interface InterventionOptions extends Omit<EstimatorOptions, "onProgress"> {
  /** DDIM steps for inversion and regeneration (default 50) */
  readonly steps?: number;
  /** classifier-free guidance during inversion and regeneration (default 1: none) */
  readonly guidance?: number;
  /** text put where a removed word was (default: delete it; the reference's editing uses "_") */
  readonly placeholder?: string;
  /**
   * where attention maps come from (default: `supportsAttention`/`wordAttention` of src/attention;
   * `false`: skip). A model it does not support (the oracles) reports attention "unavailable".
   */
  readonly attention?: AttentionProvider | false;
  /** where attention is gathered (default "trajectory": DAAM over the DDIM steps) */
  readonly attentionAt?: "sampled" | "trajectory";
  /** bootstrap resamples of the correlations' errors (default 1000) */
  readonly resamples?: number;
  /** JSON-lines results file to append to and resume from */
  readonly results?: string;
  /** run one shard of the items */
  readonly shard?: Shard;
  /** called after every item (`formatProgress` of the runner prints it) */
  readonly onProgress?: (progress: StudyProgress) => void;
}

/** What is stored per item (one JSON line): enough to recompute every correlation after resume. */
export interface InterventionRecord {
  /** the caption */
  readonly caption: string;
  /** the word (as given) */
  readonly word: string;
  /** the caption the edited image was generated from */
  readonly edited: string;
  /** the caption without the word, the condition of the information */
  readonly context: string;
  /** map size (data resolution) */
  readonly width: number;
  /** map size (data resolution) */
  readonly height: number;
  /** Σ of the change map */
  readonly change: number;
  /** i(x; w | context) in nats, with its standard error */
  readonly information: { readonly nats: number; readonly se: number };
  /** change map, row-major */
  readonly changeMap: number[];
  /** information map, row-major (sums to `information.nats`) */
  readonly informationMap: number[];
  /** attention map, row-major, when the baseline ran */
  readonly attentionMap?: number[];
}

/** Everything one intervention produced, including the data (for display; not stored). */
export interface InterventionCase {
  /** the compact record */
  readonly record: InterventionRecord;
  /** the original image as model data */
  readonly original: Float32Array;
  /** x_T from the inversion */
  readonly noise: Float32Array;
  /** regenerated under the unchanged caption */
  readonly reconstruction: Float32Array;
  /** regenerated under the edited caption */
  readonly edited: Float32Array;
  /** Σ_channels (edited − reconstruction)² */
  readonly changeMap: Heatmap;
  /** the word's conditional-information map */
  readonly informationMap: Heatmap;
  /** the word's attention map, if the baseline ran */
  readonly attentionMap?: Heatmap;
}

/** A correlation with its bootstrap standard error. */
export interface Correlation {
  /** Pearson r (NaN when fewer than 2 usable items) */
  readonly r: number;
  /** bootstrap standard error over items (NaN when fewer than 3 usable items) */
  readonly se: number;
  /** items that entered the statistic */
  readonly n: number;
  /** items left out because a map was constant (pixel level only) */
  readonly excluded: number;
}

/** The correlations of one method (information or attention) with the change. */
export interface MethodCorrelations {
  /** one (value, change) pair per item */
  readonly image: Correlation;
  /** per-item pixel-level r, averaged over items */
  readonly pixel: Correlation;
  /** r over all pixels of all items pooled */
  readonly pixelPooled: Correlation;
}

/**
 * Runs one intervention and keeps every intermediate (for notebooks and figures).
 *
 * @example
 * ```ts
 * import { interveneOne } from "./intervention.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const result = await interveneOne(model, { image, caption: EXAMPLE_PROMPT, word: "the" }, { steps: 10, samples: 8 });
 * console.assert(result.record.change === 0 && result.record.information.nats === 0);
 * ```
 */
export async function interveneOne(
  model: Denoiser,
  item: InterventionItem,
  options: InterventionOptions = {},
): Promise<InterventionCase> {
  const removal = { placeholder: options.placeholder, occurrence: item.occurrence };
  const context = removeWord(item.caption, item.word, removal);
  const edited = item.replacement === undefined
    ? context
    : removeWord(item.caption, item.word, { ...removal, placeholder: item.replacement });
  const original = await model.prepare(item.image);
  const ddim = { steps: options.steps, guidance: options.guidance };
  const [noise] = await ddimBatch(
    model,
    [{ prompt: item.caption, start: original }],
    "invert",
    ddim,
  );
  const [reconstruction, editedData] = await ddimBatch(
    model,
    [
      { prompt: item.caption, start: noise },
      { prompt: edited, start: noise },
    ],
    "generate",
    ddim,
  );
  const changeMap = squaredDifferenceMap(model, reconstruction, editedData);
  const information = await conditionalInformation(
    model,
    original,
    item.caption,
    item.word,
    { ...options, ...removal, onProgress: undefined },
  );
  const provider = studyAttention(options.attention);
  const attention = provider?.supportsAttention(model)
    ? await provider.wordAttention(model, original, item.caption, item.word, {
      at: options.attentionAt ?? "trajectory",
      samples: options.samples,
      seed: options.seed,
      steps: options.steps,
    })
    : undefined;
  const record: InterventionRecord = {
    caption: item.caption,
    word: item.word,
    edited,
    context,
    width: changeMap.width,
    height: changeMap.height,
    change: changeMap.sum(),
    information: { nats: information.estimate.nats, se: information.estimate.se },
    changeMap: Array.from(changeMap.data),
    informationMap: Array.from(information.map.data),
    ...(attention ? { attentionMap: Array.from(attention.data) } : {}),
  };
  return {
    record,
    original,
    noise,
    reconstruction,
    edited: editedData,
    changeMap,
    informationMap: information.map,
    attentionMap: attention,
  };
}

/**
 * The prompt-intervention study over items, through the study runner (results file, resume,
 * shards, bad rows skipped): per-item change and information, and their correlations.
 *
 * @example
 * ```ts
 * import { intervene } from "./intervention.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const items = ["red", "left", "the"].map((word, i) => ({
 *   image: model.sample("a red circle on the left", { seed: i + 1 }), caption: "a red circle on the left", word,
 * }));
 * const result = await intervene(model, items, { steps: 10, samples: 8, resamples: 50 });
 * console.assert(result.items.length === 3 && result.attention === "unavailable");
 * ```
 */
export async function intervene(
  model: Denoiser,
  items: readonly InterventionItem[],
  options: InterventionOptions = {},
): Promise<InterventionResult> {
  const run = await runStudy(
    items,
    interventionId,
    async (item) => (await interveneOne(model, item, options)).record,
    { results: options.results, shard: options.shard, onProgress: options.onProgress },
  );
  const attentionRan = studyAttention(options.attention)?.supportsAttention(model) ?? false;
  return new InterventionResult(
    model.name,
    run.results.map(({ id, result }) => ({ id, ...result })),
    run.failures,
    run.resumed,
    run.total,
    attentionRan,
    options.resamples ?? 1000,
  );
}

/**
 * The id of an item: its `id`, or `caption | word` (plus ` -> replacement`, `#occurrence`).
 *
 * @example
 * ```ts
 * import { interventionId } from "./intervention.ts";
 * console.assert(interventionId({ image: "x.png", caption: "a red circle", word: "red" }) === "a red circle | red");
 * ```
 */
export function interventionId(item: InterventionItem): string {
  if (item.id !== undefined) return item.id;
  const swap = item.replacement === undefined ? "" : ` -> ${item.replacement}`;
  const which = item.occurrence ? `#${item.occurrence}` : "";
  return `${item.caption} | ${item.word}${which}${swap}`;
}

/** One finished item of an {@link InterventionResult}. */
export type InterventionRow = InterventionRecord & { readonly id: string };

/**
 * The outcome of {@link intervene}: per-item numbers, the correlations with bootstrap errors, a
 * table, a scatter chart and Jupyter display.
 *
 * @example
 * ```ts
 * import { InterventionResult } from "./intervention.ts";
 * const row = (id: string, change: number, nats: number) => ({
 *   id, caption: "c", word: "w", edited: "c", context: "c", width: 2, height: 1, change,
 *   information: { nats, se: 0 }, changeMap: [change, 0], informationMap: [nats, 0],
 * });
 * const result = new InterventionResult("m", [row("a", 0, 0), row("b", 1, 2), row("c", 3, 5)], [], 0, 3, false);
 * console.assert(result.information.image.r > 0.9);
 * ```
 */
export class InterventionResult {
  /** correlations of the conditional information with the change */
  readonly information: MethodCorrelations;
  /** correlations of the attention map with the change, or "unavailable" */
  readonly attention: MethodCorrelations | "unavailable";

  /**
   * Computes the correlations of finished items (as {@link intervene} does after a run).
   *
   * @param model the model's name
   * @param items the finished items
   * @param failures bad rows that were skipped
   * @param resumed items read back from the results file
   * @param total items of this shard
   * @param attentionRan whether the attention baseline ran on this model
   * @param resamples bootstrap resamples
   */
  constructor(
    readonly model: string,
    readonly items: readonly InterventionRow[],
    readonly failures: readonly StudyFailure[],
    readonly resumed: number,
    readonly total: number,
    attentionRan: boolean,
    resamples = 1000,
  ) {
    const change = items.map((r) => r.change);
    const changeMaps = items.map((r) => r.changeMap);
    this.information = correlations(
      change,
      items.map((r) => r.information.nats),
      changeMaps,
      items.map((r) => r.informationMap),
      resamples,
    );
    const attentionMaps = items.map((r) => r.attentionMap);
    if (attentionRan && attentionMaps.every((m) => m !== undefined)) {
      const maps = attentionMaps as number[][];
      // attention maps are min–max normalised, so their image-level value is their mean
      const means = maps.map((m) => m.reduce((s, v) => s + v, 0) / m.length);
      this.attention = correlations(change, means, changeMaps, maps, resamples);
    } else {
      this.attention = "unavailable";
    }
  }

  /** Scatter of the word's information (x) against the change (y), one dot per item. */
  scatter(): Chart {
    return scatterPlot(
      this.items.map((r) => ({ x: r.information.nats, y: r.change })),
      {
        title: `Prompt intervention on ${this.model}`,
        xLabel: "i(x; word | rest of caption) (nats)",
        yLabel: "change Σ(edited − reconstruction)²",
      },
    );
  }

  /** Plain data (per-item numbers without the maps, and the correlations). */
  toJSON(): Record<string, unknown> {
    return {
      model: this.model,
      total: this.total,
      resumed: this.resumed,
      failures: this.failures,
      information: this.information,
      attention: this.attention,
      items: this.items.map((r) => ({
        id: r.id,
        edited: r.edited,
        change: r.change,
        information: r.information,
      })),
    };
  }

  /** A fixed-width table of the correlations (r ± bootstrap SE, n). */
  toString(): string {
    const cell = (c: Correlation) =>
      Number.isFinite(c.r)
        ? `${c.r.toFixed(3)} ± ${Number.isFinite(c.se) ? c.se.toFixed(3) : "—"} (n=${c.n}${
          c.excluded ? `, ${c.excluded} constant` : ""
        })`
        : `— (n=${c.n})`;
    const row = (name: string, m: MethodCorrelations | "unavailable") =>
      m === "unavailable"
        ? `${name.padEnd(12)}  unavailable for this model`
        : `${name.padEnd(12)}  ${cell(m.image).padEnd(26)}  ${cell(m.pixel).padEnd(26)}  ${
          cell(m.pixelPooled)
        }`;
    return [
      `prompt intervention on ${this.model}: ${this.items.length}/${this.total} items` +
      ` (${this.resumed} resumed, ${this.failures.length} bad)`,
      `${"method".padEnd(12)}  ${"image-level r".padEnd(26)}  ${
        "pixel-level r (per item)".padEnd(26)
      }  pixel-level r (pooled)`,
      row("information", this.information),
      row("attention", this.attention),
    ].join("\n");
  }

  /** The table as text and HTML, with the scatter chart. */
  [JUPYTER_DISPLAY](): MimeBundle {
    const table = this.toString();
    const escaped = escapeHtml(table);
    let chart = "";
    try {
      chart = this.scatter().svg;
    } catch {
      chart = "<p>(no scatter: fewer than 2 items or constant values)</p>";
    }
    return { "text/plain": table, "text/html": `<pre>${escaped}</pre>${chart}` };
  }
}

/** Σ over channels of (a − b)² per pixel, as a data-resolution map. */
function squaredDifferenceMap(model: Denoiser, a: Float32Array, b: Float32Array): Heatmap {
  const [channels, height, width] = model.shape;
  const pixels = height * width;
  const map = new Float32Array(pixels);
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < pixels; p++) {
      const diff = a[c * pixels + p] - b[c * pixels + p];
      map[p] += diff * diff;
    }
  }
  return new Heatmap(width, height, map);
}

/** Image-level, per-item pixel-level and pooled pixel-level correlations with bootstrap errors. */
function correlations(
  change: readonly number[],
  value: readonly number[],
  changeMaps: readonly number[][],
  valueMaps: readonly number[][],
  resamples: number,
): MethodCorrelations {
  const image = correlate(change.length, (idx) => pearsonOf(idx, change, value), resamples, 0);
  const perItem = changeMaps.map((m, i) => pearsonOrNaN(m, valueMaps[i]));
  const usable = perItem.flatMap((r, i) => Number.isFinite(r) ? [i] : []);
  const pixel = correlate(
    usable.length,
    (idx) => idx.reduce((s, i) => s + perItem[usable[i]], 0) / idx.length,
    resamples,
    perItem.length - usable.length,
    1,
  );
  const moments = changeMaps.map((m, i) => pixelMoments(m, valueMaps[i]));
  const pixelPooled = correlate(
    change.length,
    (idx) => pooledPearson(idx, moments),
    resamples,
    0,
  );
  return { image, pixel, pixelPooled };
}

function correlate(
  n: number,
  statistic: (indices: Int32Array) => number,
  resamples: number,
  excluded: number,
  minimum = 2,
): Correlation {
  if (n < minimum) return { r: NaN, se: NaN, n, excluded };
  const r = statistic(Int32Array.from({ length: n }, (_, i) => i));
  if (n < 3 || !Number.isFinite(r)) return { r, se: NaN, n, excluded };
  const boot = bootstrap(n, statistic, { resamples, seed: 0 });
  return { r, se: boot.se, n, excluded };
}

function pearsonOf(indices: Int32Array, x: readonly number[], y: readonly number[]): number {
  return pearsonOrNaN(Array.from(indices, (i) => x[i]), Array.from(indices, (i) => y[i]));
}

/** Pearson r, or NaN where it is undefined (a constant sample). */
function pearsonOrNaN(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length < 2) return NaN;
  const r = pearson(x, y);
  return Number.isFinite(r) ? r : NaN;
}

interface Moments {
  n: number;
  x: number;
  y: number;
  xx: number;
  yy: number;
  xy: number;
}

function pixelMoments(x: readonly number[], y: readonly number[]): Moments {
  if (x.length !== y.length) {
    throw new InvalidArgumentError(
      `a change map has ${x.length} pixels but its comparison map ${y.length}; expected equal sizes`,
    );
  }
  const m = { n: x.length, x: 0, y: 0, xx: 0, yy: 0, xy: 0 };
  for (let i = 0; i < x.length; i++) {
    m.x += x[i];
    m.y += y[i];
    m.xx += x[i] * x[i];
    m.yy += y[i] * y[i];
    m.xy += x[i] * y[i];
  }
  return m;
}

function pooledPearson(indices: Int32Array, moments: readonly Moments[]): number {
  const t = { n: 0, x: 0, y: 0, xx: 0, yy: 0, xy: 0 };
  for (const i of indices) {
    const m = moments[i];
    t.n += m.n;
    t.x += m.x;
    t.y += m.y;
    t.xx += m.xx;
    t.yy += m.yy;
    t.xy += m.xy;
  }
  const sxy = t.xy - t.x * t.y / t.n;
  const sxx = t.xx - t.x * t.x / t.n, syy = t.yy - t.y * t.y / t.n;
  const r = sxy / Math.sqrt(sxx * syy);
  return sxx > 0 && syy > 0 && Number.isFinite(r) ? r : NaN;
}
