/**
 * The result of a relation/attribute test: per-item choices and accuracy with binomial standard
 * errors, overall, per kind and per group, as JSON, text, a Jupyter HTML table and a bar chart.
 *
 * @module
 */
import type { StudyFailure } from "./runner.ts";
import { InvalidArgumentError } from "../errors.ts";
import { escapeHtml, JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";
import type { StudyRun } from "./runner.ts";

/** What one item stores in the results file. */
export interface RelationRecord {
  /** image path */
  readonly image: string;
  /** "relation", "attribution" or "order" */
  readonly kind: string;
  /** relation name, attribute pair or "order" */
  readonly group: string;
  /** the caption options */
  readonly options: readonly string[];
  /** index of the true option */
  readonly trueIndex: number;
  /** index of the option with the highest i(x; option) */
  readonly chosen: number;
  /** chosen === trueIndex */
  readonly correct: boolean;
  /** i(x; option) in nats per option (null for refused options) */
  readonly nats: readonly (number | null)[];
  /** standard errors (null for refused options) */
  readonly se: readonly (number | null)[];
  /** options the model refused to condition on (scored −∞) */
  readonly refused: readonly number[];
  /** seed of the item's noise draws (from the study's seed and the item, see `rowSeed`) */
  readonly seed: number;
  /** SHA-256 of the image's content (file bytes, or model data for in-memory rows) */
  readonly imageSha256?: string;
}

/** Accuracy of a set of items. */
export interface Accuracy {
  /** "all", a kind or a group */
  readonly name: string;
  /** items */
  readonly n: number;
  /** items answered correctly */
  readonly correct: number;
  /** correct / n (NaN for no items) */
  readonly accuracy: number;
  /** binomial standard error √(p(1 − p)/n) */
  readonly se: number;
}

/**
 * Accuracy and its binomial standard error √(p(1 − p)/n).
 *
 * @throws {InvalidArgumentError} for counts that are not integers with 0 ≤ correct ≤ n
 *
 * @example
 * ```ts
 * import { binomialAccuracy } from "./relations-result.ts";
 * const a = binomialAccuracy("all", 3, 4);
 * console.assert(a.accuracy === 0.75 && Math.abs(a.se - Math.sqrt(0.75 * 0.25 / 4)) < 1e-15);
 * ```
 */
export function binomialAccuracy(name: string, correct: number, n: number): Accuracy {
  if (!Number.isInteger(n) || !Number.isInteger(correct) || n < 0 || correct < 0 || correct > n) {
    throw new InvalidArgumentError(
      `accuracy needs integers 0 ≤ correct ≤ n, got correct=${correct}, n=${n}`,
    );
  }
  if (n === 0) return { name, n, correct, accuracy: NaN, se: NaN };
  const p = correct / n;
  return { name, n, correct, accuracy: p, se: Math.sqrt((p * (1 - p)) / n) };
}

/** {@link RelationsResult} as plain JSON data (`toJSON`/`fromJSON` round-trip it). */
export interface RelationsResultJSON {
  /** model name */
  readonly model: string;
  /** noise draws per item */
  readonly samples: number;
  /** items of this shard */
  readonly total: number;
  /** items found finished in the results file */
  readonly resumed: number;
  /** accuracy over all good items (recomputed by `fromJSON`) */
  readonly accuracy: Accuracy;
  /** accuracy per kind */
  readonly byKind: readonly Accuracy[];
  /** accuracy per group */
  readonly byGroup: readonly Accuracy[];
  /** good items: id and record */
  readonly items: readonly ({ readonly id: string } & RelationRecord)[];
  /** bad items, skipped */
  readonly failures: readonly StudyFailure[];
}

/**
 * Relation-test results.
 *
 * @example
 * ```ts
 * import { RelationsResult } from "./relations-result.ts";
 * const item = (correct: boolean, group: string) => ({ id: group + correct, result: {
 *   image: "1.png", kind: "relation", group, options: ["b", "a"], trueIndex: 1,
 *   chosen: correct ? 1 : 0, correct, nats: [0, 1], se: [0, 0], refused: [], seed: 1 } });
 * const r = new RelationsResult({ results: [item(true, "above"), item(false, "above"), item(true, "below")],
 *   failures: [], resumed: 0, total: 3 }, 10, "m");
 * console.assert(r.accuracy.correct === 2 && r.byGroup.find((g) => g.name === "above")!.accuracy === 0.5);
 * ```
 */
export class RelationsResult {
  /** good items: id and record */
  readonly items: readonly ({ readonly id: string } & RelationRecord)[];
  /** bad items, skipped */
  readonly failures: readonly StudyFailure[];
  /** items found finished in the results file */
  readonly resumed: number;
  /** items of this shard */
  readonly total: number;
  /** accuracy over all good items */
  readonly accuracy: Accuracy;
  /** accuracy per kind (relation / attribution / order), in first-seen order */
  readonly byKind: readonly Accuracy[];
  /** accuracy per group (relation name / attribute pair), in first-seen order */
  readonly byGroup: readonly Accuracy[];
  /** noise draws per item */
  readonly samples: number;
  /** model name */
  readonly model: string;

  /**
   * Builds the accuracies from a study run.
   * @param run the study run
   * @param samples noise draws per item
   * @param model model name
   */
  constructor(run: StudyRun<RelationRecord>, samples: number, model: string) {
    this.items = run.results.map((r) => ({ id: r.id, ...r.result }));
    this.failures = run.failures;
    this.resumed = run.resumed;
    this.total = run.total;
    this.samples = samples;
    this.model = model;
    this.accuracy = accuracyOf("all", this.items);
    this.byKind = grouped(this.items, (i) => i.kind);
    this.byGroup = grouped(this.items, (i) => i.group);
  }

  /** Rebuilds a result from its JSON: the accuracies are recomputed from the items. */
  static fromJSON(json: RelationsResultJSON): RelationsResult {
    return new RelationsResult(
      {
        results: json.items.map(({ id, ...record }) => ({ id, result: record })),
        failures: json.failures,
        resumed: json.resumed,
        total: json.total,
      },
      json.samples,
      json.model,
    );
  }

  /** Plain data (NaN becomes null in JSON). */
  toJSON(): RelationsResultJSON {
    return {
      model: this.model,
      samples: this.samples,
      total: this.total,
      resumed: this.resumed,
      accuracy: this.accuracy,
      byKind: this.byKind,
      byGroup: this.byGroup,
      items: this.items,
      failures: this.failures,
    };
  }

  /** A fixed-width text table: overall, per kind, per group. */
  toString(): string {
    const width = Math.max(
      10,
      ...this.byGroup.map((g) => g.name.length + 2),
      ...this.byKind.map((k) => k.name.length + 5),
    );
    const line = (a: Accuracy) =>
      `${a.name.padEnd(width)} ${(100 * a.accuracy).toFixed(1).padStart(6)} % ± ${
        (100 * a.se).toFixed(1).padStart(4)
      }  (${a.correct}/${a.n})`;
    return [
      `relations on ${this.model}: ${this.items.length} items, ${this.failures.length} bad, ` +
      `${this.resumed} resumed, ${this.samples} draws per item`,
      line(this.accuracy),
      ...this.byKind.map((a) => line({ ...a, name: `kind ${a.name}` })),
      ...this.byGroup.map((a) => line({ ...a, name: `  ${a.name}` })),
    ].join("\n");
  }

  /** Jupyter: an HTML table. */
  [JUPYTER_DISPLAY](): MimeBundle {
    const row = (a: Accuracy, indent = false) =>
      `<tr><td>${indent ? "&nbsp;&nbsp;" : ""}${
        escapeHtml(a.name)
      }</td><td style="text-align:right">${(100 * a.accuracy).toFixed(1)} %</td><td>± ${
        (100 * a.se).toFixed(1)
      }</td><td style="text-align:right">${a.correct}/${a.n}</td></tr>`;
    const html = `<table><caption>relations on ${escapeHtml(this.model)} — ${this.items.length} ` +
      `items, ${this.failures.length} bad, ${this.samples} draws per item</caption><tr><th>items` +
      `</th><th>accuracy</th><th>se</th><th>correct</th></tr>${row(this.accuracy)}${
        this.byKind.map((a) => row(a)).join("")
      }${this.byGroup.map((a) => row(a, true)).join("")}</table>`;
    return { "text/html": html, "text/plain": this.toString() };
  }
}

function accuracyOf(name: string, items: readonly RelationRecord[]): Accuracy {
  return binomialAccuracy(name, items.filter((i) => i.correct).length, items.length);
}

function grouped(
  items: readonly RelationRecord[],
  key: (item: RelationRecord) => string,
): Accuracy[] {
  const groups = new Map<string, RelationRecord[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return [...groups].map(([name, members]) => accuracyOf(name, members));
}
