/**
 * The outcome of the prompt-intervention study: per-item change and information, and their
 * correlations (image level, per-item pixel level, pooled pixel level) with bootstrap errors.
 *
 * @module
 */
import { escapeHtml, JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";
import {
  type Correlation,
  imageCorrelation,
  type MethodCorrelations,
  methodCorrelations,
} from "../numerics/correlations.ts";
import type { StudyFailure } from "./runner.ts";
import { finiteOrNaN } from "./result-json.ts";

/** A number of nats with its standard error. */
export interface NatsWithError {
  /** the estimate in nats */
  readonly nats: number;
  /** its standard error */
  readonly se: number;
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
  /** i(x; w | context) in nats with its standard error: the standard estimator (image level) */
  readonly information: NatsWithError;
  /** the same from the orthogonal estimator on the same draws (the information map's sum) */
  readonly informationOrthogonal?: NatsWithError;
  /** change map, row-major */
  readonly changeMap: number[];
  /** orthogonal information map, row-major (sums to `informationOrthogonal.nats`) */
  readonly informationMap: number[];
  /** attention map, row-major, when the baseline ran */
  readonly attentionMap?: number[];
  /** SHA-256 of the image's content (file bytes, or model data for in-memory rows) */
  readonly imageSha256?: string;
  /** seed of the item's draws (from the study's seed and the item, see `rowSeed`) */
  readonly seed?: number;
}

/** One finished item with its maps (as the study computes it). */
export type InterventionRow = InterventionRecord & { readonly id: string };

/** One finished item without its maps (what a result keeps in JSON). */
export interface InterventionSummary {
  /** the item id */
  readonly id: string;
  /** the caption */
  readonly caption: string;
  /** the word */
  readonly word: string;
  /** the caption the edited image was generated from */
  readonly edited: string;
  /** the condition of the information */
  readonly context: string;
  /** Σ of the change map */
  readonly change: number;
  /** i(x; w | context), standard estimator, in nats with its standard error */
  readonly information: NatsWithError;
  /** the orthogonal estimator's value on the same draws */
  readonly informationOrthogonal?: NatsWithError;
  /** seed of the item's draws (absent in older results files) */
  readonly seed?: number;
}

/** {@link InterventionResult} as plain JSON data (`toJSON`/`fromJSON` round-trip it). */
export interface InterventionResultJSON {
  /** the model's name */
  readonly model: string;
  /** items of this shard */
  readonly total: number;
  /** items read back from the results file */
  readonly resumed: number;
  /** bad rows that were skipped */
  readonly failures: readonly StudyFailure[];
  /**
   * correlations of the conditional information with the change: image level from the standard
   * estimator, pixel level from the orthogonal map (the reference's pairing)
   */
  readonly information: MethodCorrelations;
  /** image-level r of the orthogonal estimator's scalar instead, for comparison */
  readonly informationOrthogonalImage?: Correlation;
  /** correlations of the attention map with the change, or "unavailable" */
  readonly attention: MethodCorrelations | "unavailable";
  /** the finished items without their maps */
  readonly items: readonly InterventionSummary[];
}

/**
 * The outcome of `interventionStudy`: per-item numbers, the correlations with bootstrap errors,
 * a table and Jupyter display (charts: `interventionScatter` in plots/).
 *
 * @example
 * ```ts
 * import { InterventionResult } from "./intervention-result.ts";
 * const row = (id: string, change: number, nats: number) => ({
 *   id, caption: "c", word: "w", edited: "c", context: "c", width: 2, height: 1, change,
 *   information: { nats, se: 0 }, changeMap: [change, 0], informationMap: [nats, 0],
 * });
 * const result = InterventionResult.fromRows("m", [row("a", 0, 0), row("b", 1, 2), row("c", 3, 5)],
 *   { failures: [], resumed: 0, total: 3, attentionRan: false });
 * console.assert(result.information.image.r > 0.9);
 * const again = InterventionResult.fromJSON(JSON.parse(JSON.stringify(result)));
 * console.assert(again.information.image.r === result.information.image.r);
 * ```
 */
export class InterventionResult {
  /** the model's name */
  readonly model: string;
  /** items of this shard */
  readonly total: number;
  /** items read back from the results file */
  readonly resumed: number;
  /** bad rows that were skipped */
  readonly failures: readonly StudyFailure[];
  /** correlations of the information with the change (standard at image level, orthogonal maps) */
  readonly information: MethodCorrelations;
  /** image-level r of the orthogonal estimator's scalar, for comparison (when every item has it) */
  readonly informationOrthogonalImage?: Correlation;
  /** correlations of the attention map with the change, or "unavailable" */
  readonly attention: MethodCorrelations | "unavailable";
  /** the finished items (without maps: see {@link InterventionResult.row}) */
  readonly items: readonly InterventionSummary[];
  readonly #rows: ReadonlyMap<string, InterventionRow>;

  /**
   * Wraps computed data (use {@link InterventionResult.fromRows} to compute it).
   *
   * @param data the result's data
   * @param rows the items with their maps, when computed in this process
   */
  constructor(data: InterventionResultJSON, rows: readonly InterventionRow[] = []) {
    this.model = data.model;
    this.total = data.total;
    this.resumed = data.resumed;
    this.failures = data.failures;
    this.information = data.information;
    if (data.informationOrthogonalImage) {
      this.informationOrthogonalImage = data.informationOrthogonalImage;
    }
    this.attention = data.attention;
    this.items = data.items;
    this.#rows = new Map(rows.map((r) => [r.id, r]));
  }

  /**
   * Computes the correlations of finished items (as `interventionStudy` does after a run).
   *
   * @param model the model's name
   * @param rows the finished items with their maps
   * @param run failures, resumed and total of the run; whether the attention baseline ran
   * @param resamples bootstrap resamples (default 1000)
   */
  static fromRows(
    model: string,
    rows: readonly InterventionRow[],
    run: {
      readonly failures: readonly StudyFailure[];
      readonly resumed: number;
      readonly total: number;
      readonly attentionRan: boolean;
    },
    resamples = 1000,
  ): InterventionResult {
    const change = rows.map((r) => r.change);
    const changeMaps = rows.map((r) => r.changeMap);
    const information = methodCorrelations(
      change,
      rows.map((r) => r.information.nats),
      changeMaps,
      rows.map((r) => r.informationMap),
      resamples,
    );
    const orthogonal = rows.map((r) => r.informationOrthogonal?.nats);
    const informationOrthogonalImage = rows.length > 0 && orthogonal.every((v) => v !== undefined)
      ? imageCorrelation(change, orthogonal as number[], resamples)
      : undefined;
    const attentionMaps = rows.map((r) => r.attentionMap);
    let attention: MethodCorrelations | "unavailable" = "unavailable";
    if (run.attentionRan && attentionMaps.every((m) => m !== undefined)) {
      const maps = attentionMaps as number[][];
      // image level: the sum of the raw DAAM map, as the reference (how much the word is
      // attended); pixel level is unaffected by the scale
      const sums = maps.map((m) => m.reduce((s, v) => s + v, 0));
      attention = methodCorrelations(change, sums, changeMaps, maps, resamples);
    }
    const items = rows.map((r) => ({
      id: r.id,
      caption: r.caption,
      word: r.word,
      edited: r.edited,
      context: r.context,
      change: r.change,
      information: r.information,
      ...(r.informationOrthogonal ? { informationOrthogonal: r.informationOrthogonal } : {}),
      ...(r.seed === undefined ? {} : { seed: r.seed }),
    }));
    return new InterventionResult(
      {
        model,
        total: run.total,
        resumed: run.resumed,
        failures: run.failures,
        information,
        ...(informationOrthogonalImage ? { informationOrthogonalImage } : {}),
        attention,
        items,
      },
      rows,
    );
  }

  /** Rebuilds a result from its JSON (numbers that were NaN come back as NaN, not null). */
  static fromJSON(json: InterventionResultJSON): InterventionResult {
    const restore = (m: MethodCorrelations): MethodCorrelations => ({
      image: restoreCorrelation(m.image),
      pixel: restoreCorrelation(m.pixel),
      pixelPooled: restoreCorrelation(m.pixelPooled),
    });
    return new InterventionResult({
      ...json,
      information: restore(json.information),
      ...(json.informationOrthogonalImage
        ? { informationOrthogonalImage: restoreCorrelation(json.informationOrthogonalImage) }
        : {}),
      attention: json.attention === "unavailable" ? "unavailable" : restore(json.attention),
      items: json.items.map((i) => ({
        ...i,
        change: finiteOrNaN(i.change),
        information: { nats: finiteOrNaN(i.information.nats), se: finiteOrNaN(i.information.se) },
      })),
    });
  }

  /** An item with its maps, when it was computed in this process (undefined after `fromJSON`). */
  row(id: string): InterventionRow | undefined {
    return this.#rows.get(id);
  }

  /** Plain data: the correlations and the per-item numbers without maps. */
  toJSON(): InterventionResultJSON {
    return {
      model: this.model,
      total: this.total,
      resumed: this.resumed,
      failures: this.failures,
      information: this.information,
      ...(this.informationOrthogonalImage
        ? { informationOrthogonalImage: this.informationOrthogonalImage }
        : {}),
      attention: this.attention,
      items: this.items,
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
      ...(this.informationOrthogonalImage
        ? [`${"  orthogonal".padEnd(12)}  ${cell(this.informationOrthogonalImage)}`]
        : []),
      row("attention", this.attention),
    ].join("\n");
  }

  /** The table as text and HTML. */
  [JUPYTER_DISPLAY](): MimeBundle {
    const table = this.toString();
    return { "text/plain": table, "text/html": `<pre>${escapeHtml(table)}</pre>` };
  }
}

function restoreCorrelation(c: Correlation): Correlation {
  return { r: finiteOrNaN(c.r), se: finiteOrNaN(c.se), n: c.n, excluded: c.excluded };
}
