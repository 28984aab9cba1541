/**
 * The result of a PID study: the redundancy, unique and synergy terms of every row, plain and
 * conditional, at image level (each with its standard error) and as pixel-level totals (the sums of
 * the paper's maps; `PidTerm` in `estimators/pid.ts` says what each level satisfies).
 *
 * @module
 */
import { JUPYTER_DISPLAY } from "../jupyter.ts";
import { finiteOrNaN } from "./result-json.ts";
import type { StudyFailure } from "./runner.ts";

/**
 * One stored term: the image-level raw value with its SE and bootstrap bias-corrected value, and
 * the pixel-level total.
 */
export interface PidStudyTerm {
  /** image-level raw plug-in value in nats (R = min(I_A, I_B)) */
  readonly nats: number;
  /** bootstrap standard error */
  readonly se: number;
  /** bootstrap bias-corrected value (absent in older results files) */
  readonly biasCorrected?: number;
  /**
   * pixel-level total, the sum of the term's map (R = Σ_p min(i_A(p), i_B(p))); no SE (absent in
   * older results files)
   */
  readonly pixelTotal?: number;
}

/** Image-level terms of one row, as stored in the results file. */
export interface PidStudyRow {
  /** the row id */
  readonly id: string;
  /** the prompt */
  readonly prompt: string;
  /** first word */
  readonly wordA: string;
  /** second word */
  readonly wordB: string;
  /** plain-form terms: name → { nats, se, biasCorrected, pixelTotal } ({@link PidStudyTerm}) */
  readonly plain: Record<string, PidStudyTerm>;
  /** conditional-form terms */
  readonly conditional: Record<string, PidStudyTerm>;
  /** SHA-256 of the image's content (file bytes, or model data for in-memory rows) */
  readonly imageSha256?: string;
}

/** {@link PidStudyResult} as plain JSON data (`toJSON`/`fromJSON` round-trip it). */
export interface PidStudyResultJSON {
  /** one entry per good row */
  readonly rows: readonly PidStudyRow[];
  /** bad rows with what was wrong */
  readonly failures: readonly StudyFailure[];
}

/**
 * Result of `pidStudy`: image-level terms per row.
 *
 * @example
 * ```ts
 * import { PidStudyResult } from "./pid-study-result.ts";
 * const term = { nats: 0.5, se: 0.1 };
 * const terms = { redundancy: term, uniqueA: term, uniqueB: term, synergy: term };
 * const result = new PidStudyResult([{ id: "r", prompt: "a b", wordA: "a", wordB: "b", plain: terms, conditional: terms }], []);
 * const again = PidStudyResult.fromJSON(JSON.parse(JSON.stringify(result)));
 * console.assert(again.rows[0].conditional.synergy.nats === 0.5 && again.table().length === 8);
 * ```
 */
export class PidStudyResult {
  /**
   * Creates the result.
   * @param rows one entry per good row
   * @param failures bad rows with what was wrong
   */
  constructor(
    readonly rows: readonly PidStudyRow[],
    readonly failures: readonly StudyFailure[],
  ) {}

  /** Flat table rows: one per (row, form, term). */
  table(): {
    id: string;
    form: string;
    term: string;
    nats: number;
    se: number;
    biasCorrected?: number;
    pixelTotal?: number;
  }[] {
    return this.rows.flatMap((r) =>
      (["plain", "conditional"] as const).flatMap((form) =>
        Object.entries(r[form]).map(([term, e]) => ({ id: r.id, form, term, ...e }))
      )
    );
  }

  /** Rebuilds a result from its JSON (null, how JSON writes NaN, becomes NaN again). */
  static fromJSON(json: PidStudyResultJSON): PidStudyResult {
    const restore = (terms: Record<string, PidStudyTerm>) =>
      Object.fromEntries(
        Object.entries(terms).map(([k, e]) => [k, {
          nats: finiteOrNaN(e.nats),
          se: finiteOrNaN(e.se),
          ...(e.biasCorrected === undefined ? {} : { biasCorrected: finiteOrNaN(e.biasCorrected) }),
          ...(e.pixelTotal === undefined ? {} : { pixelTotal: finiteOrNaN(e.pixelTotal) }),
        }]),
      );
    return new PidStudyResult(
      json.rows.map((r) => ({
        ...r,
        plain: restore(r.plain),
        conditional: restore(r.conditional),
      })),
      json.failures,
    );
  }

  /** Plain data. */
  toJSON(): PidStudyResultJSON {
    return { rows: this.rows, failures: this.failures };
  }

  /**
   * Text table of the conditional-form image-level redundancy, uniques and synergy per row, and the
   * pixel-level redundancy (R_px, where the results file has it).
   */
  toString(): string {
    const f = (e: { nats: number; se: number }) => `${e.nats.toFixed(3)}±${e.se.toFixed(3)}`;
    const px = (e: PidStudyTerm) =>
      e.pixelTotal === undefined ? "" : `  R_px ${e.pixelTotal.toFixed(3)}`;
    const lines = this.rows.map((r) =>
      `${r.id.padEnd(36)} R ${f(r.conditional.redundancy)}  U_A ${f(r.conditional.uniqueA)}  U_B ${
        f(r.conditional.uniqueB)
      }  S ${f(r.conditional.synergy)}${px(r.conditional.redundancy)}`
    );
    const bad = this.failures.length ? [`${this.failures.length} bad row(s) skipped`] : [];
    return [
      "PID study (conditional form, nats; image level ± SE, R_px = Σ_p min(i_A(p), i_B(p)))",
      ...lines,
      ...bad,
    ].join("\n");
  }

  /** Shows the text table in Jupyter. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}
