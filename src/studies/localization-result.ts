/**
 * The result of a localization study: per-row IoUs at every threshold, and the summary table
 * (mIoU with the paper's global-threshold protocol and at a fixed threshold, per method), as JSON,
 * text, a Jupyter HTML table and a grouped bar chart.
 *
 * @module
 */
import type { StudyFailure } from "./runner.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Heatmap } from "../images/heatmap.ts";
import type { ImageFit } from "../images/load-image.ts";
import { finiteOrNaN } from "./result-json.ts";
import { escapeHtml, JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";
import { meanWithError } from "../numerics/statistics.ts";
import { selectGlobalThreshold } from "./iou.ts";
import type { StudyRun } from "./runner.ts";

/** A localization method (see {@link LOCALIZATION_METHODS}). */
export type LocalizationMethod = typeof LOCALIZATION_METHODS[number];

/**
 * The methods of a localization table, in display order, named for what they are (Kong et al.'s
 * table, read from the reference code, REFERENCE §12):
 * - `information`: the conditional-information map i(x; word | context) (the paper's "Information");
 * - `whole-image`: every pixel (the trivial baseline);
 * - `attention`: DAAM gathered along a DDIM inversion of the image (the paper's "Attention");
 * - `attention-at-sampled-noise`: DAAM gathered while the UNet denoises the image noised at the
 *   estimator's importance-sampled α — the paper's "Attention+Information" (no information map is
 *   added: the name in the paper refers to where the attention is gathered);
 * - `infodiff-combined`: infodiff's own, in neither the paper nor its code: the information map
 *   plus `attention-at-sampled-noise`, each min–max normalised, normalised again;
 * - `concept-attention`: a diffusion transformer's concept-attention maps (ConceptAttention's
 *   output-space maps with the prompt's tokens as the concepts, `Denoiser.conceptAttention`; with
 *   the study's `concepts`, the row's object and those words streamed as concepts), gathered at
 *   the same sampled noise as `attention-at-sampled-noise`; unavailable on UNets.
 *
 * @example
 * ```ts
 * import { LOCALIZATION_METHODS } from "./localization-result.ts";
 * console.assert(LOCALIZATION_METHODS.includes("attention-at-sampled-noise"));
 * ```
 */
export const LOCALIZATION_METHODS: readonly [
  "information",
  "whole-image",
  "attention",
  "attention-at-sampled-noise",
  "infodiff-combined",
  "concept-attention",
] = Object.freeze(
  [
    "information",
    "whole-image",
    "attention",
    "attention-at-sampled-noise",
    "infodiff-combined",
    "concept-attention",
  ] as const,
);

/**
 * The methods of the paper's localization table, what a study computes by default.
 *
 * @example
 * ```ts
 * import { PAPER_LOCALIZATION_METHODS } from "./localization-result.ts";
 * console.assert(!PAPER_LOCALIZATION_METHODS.includes("infodiff-combined"));
 * ```
 */
export const PAPER_LOCALIZATION_METHODS: readonly LocalizationMethod[] = Object.freeze([
  "information",
  "whole-image",
  "attention",
  "attention-at-sampled-noise",
]);

/** The methods that need cross-attention maps. */
export const ATTENTION_METHODS: readonly LocalizationMethod[] = Object.freeze([
  "attention",
  "attention-at-sampled-noise",
  "infodiff-combined",
]);

/** What one row stores in the results file. */
export interface LocalizationRecord {
  /** image path or label */
  readonly image: string;
  /** caption */
  readonly caption: string;
  /** the object word (lower-case) */
  readonly word: string;
  /** ground-truth category */
  readonly category: string;
  /** the caption without the word */
  readonly context: string;
  /** i(x; word | context) in nats */
  readonly nats: number;
  /** its standard error */
  readonly se: number;
  /** seed of the row's noise draws (from the study's seed and the row, see `rowSeed`) */
  readonly seed: number;
  /** SHA-256 of the image's content (file bytes, or model data for in-memory rows) */
  readonly imageSha256?: string;
  /** pixels of the ground-truth mask (in the region the model sees) */
  readonly maskArea: number;
  /** pixels of the ground-truth mask in the original image (absent in older results files) */
  readonly truthArea?: number;
  /** pixels of that region */
  readonly pixels: number;
  /** thresholds the IoUs were evaluated at, ascending */
  readonly thresholds: readonly number[];
  /** per method, the IoU at each threshold (methods that were not computed are absent) */
  readonly ious: Partial<Record<LocalizationMethod, readonly number[]>>;
}

/** Maps of one row (computed in this run with `keepMaps`), at the mask's size, min–max normalised. */
export interface LocalizationMaps {
  /** the conditional-information map */
  readonly information: Heatmap;
  /** the ground-truth mask as a 0/1 map */
  readonly mask: Heatmap;
  /** DAAM along the DDIM inversion (`attention`), when computed */
  readonly attention?: Heatmap;
  /** DAAM at the sampled noise levels (`attention-at-sampled-noise`), when computed */
  readonly attentionAtSampledNoise?: Heatmap;
  /** `infodiff-combined`, when computed */
  readonly combined?: Heatmap;
  /** `concept-attention` (a transformer's concept-attention maps), when computed */
  readonly conceptAttention?: Heatmap;
}

/** One line of the summary table. */
export interface LocalizationSummaryRow {
  /** the method */
  readonly method: LocalizationMethod;
  /** mean IoU at the best global threshold (the paper's protocol); NaN when unavailable */
  readonly mIoU: number;
  /** that threshold (NaN for the whole-image baseline, which has none, and when unavailable) */
  readonly threshold: number;
  /** mean IoU at the fixed threshold */
  readonly mIoUFixed: number;
  /** standard error of `mIoU` (rows as independent samples) */
  readonly se: number;
  /** standard error of `mIoUFixed` */
  readonly seFixed: number;
  /** rows behind the numbers */
  readonly n: number;
  /** mean IoU at every candidate threshold, in candidate order */
  readonly byThreshold: readonly number[];
  /** why the method has no numbers, when it has none */
  readonly unavailable?: string;
}

/** What {@link LocalizationResult} is built from. */
export interface LocalizationResultInit {
  /** the study run (per-row records and failures) */
  readonly run: StudyRun<LocalizationRecord>;
  /** methods asked for, in order */
  readonly methods: readonly LocalizationMethod[];
  /** candidate global thresholds */
  readonly thresholds: readonly number[];
  /** the fixed threshold */
  readonly fixedThreshold: number;
  /** methods that could not run, with the reason */
  readonly unavailable: ReadonlyMap<LocalizationMethod, string>;
  /** maps kept in this run, by row id */
  readonly maps: ReadonlyMap<string, LocalizationMaps>;
  /** noise draws per row */
  readonly samples: number;
  /** model name */
  readonly model: string;
  /** how the study brought each image to the model's size (what the gallery must draw) */
  readonly fit?: ImageFit;
}

/** {@link LocalizationResult} as plain JSON data (`toJSON`/`fromJSON` round-trip it). */
export interface LocalizationResultJSON {
  /** model name */
  readonly model: string;
  /** noise draws per row */
  readonly samples: number;
  /** how the study brought each image to the model's size (absent in older results) */
  readonly fit?: ImageFit;
  /** methods asked for, in order */
  readonly methods: readonly LocalizationMethod[];
  /** candidate global thresholds */
  readonly thresholds: readonly number[];
  /** the fixed threshold */
  readonly fixedThreshold: number;
  /** methods that could not run, with the reason */
  readonly unavailable: Readonly<Record<string, string>>;
  /** rows of this shard */
  readonly total: number;
  /** rows found finished in the results file */
  readonly resumed: number;
  /** one line per method (recomputed from the rows by `fromJSON`) */
  readonly summary: readonly LocalizationSummaryRow[];
  /** good rows: id and record */
  readonly rows: readonly ({ readonly id: string } & LocalizationRecord)[];
  /** bad rows, skipped */
  readonly failures: readonly StudyFailure[];
}

/**
 * Localization results: `rows` (one record per good row), `summary` (one line per method),
 * `failures` (bad rows with what was wrong).
 *
 * @example
 * ```ts
 * import { LocalizationResult } from "./localization-result.ts";
 * const record = { image: "1.png", caption: "a red circle", word: "red", category: "circle",
 *   context: "a circle", nats: 1, se: 0.1, seed: 7, maskArea: 1, pixels: 4, thresholds: [0.2, 0.4],
 *   ious: { information: [0.5, 1], "whole-image": [0.25, 0.25] } };
 * const result = new LocalizationResult({
 *   run: { results: [{ id: "a", result: record }], failures: [], resumed: 0, total: 1 },
 *   methods: ["information", "whole-image"], thresholds: [0.2, 0.4], fixedThreshold: 0.4,
 *   unavailable: new Map(), maps: new Map(), samples: 10, model: "m",
 * });
 * console.assert(result.summary[0].mIoU === 1 && result.summary[0].threshold === 0.4);
 * ```
 */
export class LocalizationResult {
  /** good rows: id and record */
  readonly rows: readonly ({ readonly id: string } & LocalizationRecord)[];
  /** one line per method */
  readonly summary: readonly LocalizationSummaryRow[];
  /** bad rows, skipped */
  readonly failures: readonly StudyFailure[];
  /** rows found finished in the results file */
  readonly resumed: number;
  /** rows of this shard */
  readonly total: number;
  /** candidate global thresholds */
  readonly thresholds: readonly number[];
  /** the fixed threshold */
  readonly fixedThreshold: number;
  /** noise draws per row */
  readonly samples: number;
  /** model name */
  readonly model: string;
  /** how the study brought each image to the model's size, when known */
  readonly fit?: ImageFit;
  /** methods asked for, in order */
  readonly methods: readonly LocalizationMethod[];
  readonly #unavailable: ReadonlyMap<LocalizationMethod, string>;
  readonly #maps: ReadonlyMap<string, LocalizationMaps>;

  /** Builds the summary from the run. */
  constructor(init: LocalizationResultInit) {
    this.rows = init.run.results.map((r) => ({ id: r.id, ...r.result }));
    this.failures = init.run.failures;
    this.resumed = init.run.resumed;
    this.total = init.run.total;
    this.thresholds = init.thresholds;
    this.fixedThreshold = init.fixedThreshold;
    this.samples = init.samples;
    this.model = init.model;
    if (init.fit !== undefined) this.fit = init.fit;
    this.#maps = init.maps;
    this.methods = init.methods;
    this.#unavailable = init.unavailable;
    this.summary = init.methods.map((method) =>
      summarise(method, this.rows, init.thresholds, init.fixedThreshold, init.unavailable)
    );
  }

  /** The summary line of a method. */
  method(name: LocalizationMethod): LocalizationSummaryRow {
    const found = this.summary.find((s) => s.method === name);
    if (!found) {
      throw new InvalidArgumentError(
        `method "${name}" was not run; methods: ${this.summary.map((s) => s.method).join(", ")}`,
      );
    }
    return found;
  }

  /** Maps of a row computed in this run with `keepMaps: true` (undefined otherwise). */
  maps(id: string): LocalizationMaps | undefined {
    return this.#maps.get(id);
  }

  /** Rebuilds a result from its JSON: the summary is recomputed from the rows. */
  static fromJSON(json: LocalizationResultJSON): LocalizationResult {
    return new LocalizationResult({
      run: {
        results: json.rows.map(({ id, ...record }) => ({
          id,
          result: { ...record, nats: finiteOrNaN(record.nats), se: finiteOrNaN(record.se) },
        })),
        failures: json.failures,
        resumed: json.resumed,
        total: json.total,
      },
      methods: json.methods,
      thresholds: json.thresholds,
      fixedThreshold: json.fixedThreshold,
      unavailable: new Map(Object.entries(json.unavailable)) as Map<LocalizationMethod, string>,
      maps: new Map(),
      samples: json.samples,
      model: json.model,
      ...(json.fit === undefined ? {} : { fit: json.fit }),
    });
  }

  /** Plain data: summary, rows, failures (NaN becomes null in JSON). */
  toJSON(): LocalizationResultJSON {
    return {
      model: this.model,
      samples: this.samples,
      ...(this.fit === undefined ? {} : { fit: this.fit }),
      methods: this.methods,
      thresholds: this.thresholds,
      fixedThreshold: this.fixedThreshold,
      unavailable: Object.fromEntries(this.#unavailable),
      total: this.total,
      resumed: this.resumed,
      summary: this.summary,
      rows: this.rows,
      failures: this.failures,
    };
  }

  /**
   * Rows whose object mask vanished in the geometry the model sees (cropped away by `fit:
   * "cover"`, or too small for the resize): they score 0 for every method.
   */
  get emptiedMasks(): number {
    return this.rows.filter((r) => (r.truthArea ?? 0) > 0 && r.maskArea === 0).length;
  }

  /** A fixed-width text table. */
  toString(): string {
    const emptied = this.emptiedMasks;
    const head =
      `localization on ${this.model}: ${this.rows.length} rows, ${this.failures.length} ` +
      `bad, ${this.resumed} resumed, ${this.samples} draws per row` +
      (emptied > 0 ? `, ${emptied} masks emptied by the crop/resize (IoU 0)` : "");
    const header = `${"method".padEnd(27)} ${"mIoU".padStart(6)} ${"± se".padStart(7)} ${
      "t".padStart(5)
    } ${`mIoU@${this.fixedThreshold}`.padStart(9)} ${"n".padStart(5)}`;
    const lines = this.summary.map((s) =>
      s.unavailable
        ? `${s.method.padEnd(27)} ${s.unavailable}`
        : `${s.method.padEnd(27)} ${fmt(s.mIoU, 6)} ${fmt(s.se, 7)} ${
          Number.isNaN(s.threshold) ? "    —" : s.threshold.toFixed(3).padStart(5)
        } ${fmt(s.mIoUFixed, 9)} ${String(s.n).padStart(5)}`
    );
    return [head, header, ...lines].join("\n");
  }

  /** Jupyter: an HTML table (and the text table). */
  [JUPYTER_DISPLAY](): MimeBundle {
    const cell = (v: number) => `<td style="text-align:right">${fmt(v, 0).trim()}</td>`;
    const body = this.summary.map((s) =>
      s.unavailable
        ? `<tr><td>${s.method}</td><td colspan="5"><i>${escapeHtml(s.unavailable)}</i></td></tr>`
        : `<tr><td>${s.method}</td>${cell(s.mIoU)}${cell(s.se)}<td style="text-align:right">${
          Number.isNaN(s.threshold) ? "—" : s.threshold
        }</td>${cell(s.mIoUFixed)}<td style="text-align:right">${s.n}</td></tr>`
    ).join("");
    const html =
      `<table><caption>localization on ${escapeHtml(this.model)} — ${this.rows.length} ` +
      `rows, ${this.failures.length} bad, ${this.samples} draws per row</caption><tr><th>method` +
      `</th><th>mIoU</th><th>± se</th><th>global t</th><th>mIoU @ ${this.fixedThreshold}</th>` +
      `<th>n</th></tr>${body}</table>`;
    return { "text/html": html, "text/plain": this.toString() };
  }
}

function summarise(
  method: LocalizationMethod,
  rows: readonly LocalizationRecord[],
  thresholds: readonly number[],
  fixed: number,
  unavailable: ReadonlyMap<LocalizationMethod, string>,
): LocalizationSummaryRow {
  const empty = {
    method,
    mIoU: NaN,
    threshold: NaN,
    mIoUFixed: NaN,
    se: NaN,
    seFixed: NaN,
    n: 0,
    byThreshold: thresholds.map(() => NaN),
  };
  const reason = unavailable.get(method);
  if (reason) return { ...empty, unavailable: reason };
  const having = rows.filter((r) => r.ious[method] !== undefined);
  if (having.length === 0) return empty;
  const at = (r: LocalizationRecord, t: number) => {
    const index = r.thresholds.findIndex((v) => Math.abs(v - t) < 1e-12);
    if (index < 0) {
      throw new InvalidArgumentError(
        `a stored row (${r.image}, "${r.word}") has no IoU at threshold ${t} (stored: ` +
          `${r.thresholds.join(", ")}); resume with the thresholds it was run with or use a new ` +
          `results file`,
      );
    }
    return r.ious[method]![index];
  };
  const perRow = having.map((r) => thresholds.map((t) => at(r, t)));
  const best = selectGlobalThreshold(perRow, thresholds);
  const fixedStats = meanWithError(having.map((r) => at(r, fixed)));
  return {
    ...empty,
    mIoU: best.mIoU,
    threshold: method === "whole-image" ? NaN : best.threshold,
    mIoUFixed: fixedStats.mean,
    se: best.se,
    seFixed: fixedStats.se,
    n: having.length,
    byThreshold: best.byThreshold,
  };
}

function fmt(v: number, width: number): string {
  return (Number.isFinite(v) ? v.toFixed(3) : "—").padStart(width);
}
