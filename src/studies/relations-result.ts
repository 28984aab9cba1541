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
  /** the true caption scored strictly above every other option (a tie is wrong, as in ARO) */
  readonly correct: boolean;
  /** several options shared the highest score (then `chosen` is one that is not the true one) */
  readonly tie?: boolean;
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
  /** ARO's macro accuracy per kind (recomputed by `fromJSON`; absent in older files) */
  readonly macro?: readonly MacroAccuracy[];
  /** good items: id and record */
  readonly items: readonly ({ readonly id: string } & RelationRecord)[];
  /** bad items, skipped */
  readonly failures: readonly StudyFailure[];
}

/**
 * VG-Relation's symmetric relations, which ARO's macro accuracy leaves out (mertyg/
 * vision-language-models-are-bows, "Replicate ARO!" notebook): swapping their subject and object
 * does not make the caption false.
 */
export const ARO_SYMMETRIC_RELATIONS: ReadonlySet<string> = new Set([
  "adjusting",
  "attached to",
  "between",
  "bigger than",
  "biting",
  "boarding",
  "brushing",
  "chewing",
  "cleaning",
  "climbing",
  "close to",
  "coming from",
  "coming out of",
  "contain",
  "crossing",
  "dragging",
  "draped over",
  "drinking",
  "drinking from",
  "driving",
  "driving down",
  "driving on",
  "eating from",
  "eating in",
  "enclosing",
  "exiting",
  "facing",
  "filled with",
  "floating in",
  "floating on",
  "flying",
  "flying above",
  "flying in",
  "flying over",
  "flying through",
  "full of",
  "going down",
  "going into",
  "going through",
  "grazing in",
  "growing in",
  "growing on",
  "guiding",
  "hanging from",
  "hanging in",
  "hanging off",
  "hanging over",
  "higher than",
  "holding onto",
  "hugging",
  "in between",
  "jumping off",
  "jumping on",
  "jumping over",
  "kept in",
  "larger than",
  "leading",
  "leaning over",
  "leaving",
  "licking",
  "longer than",
  "looking in",
  "looking into",
  "looking out",
  "looking over",
  "looking through",
  "lying next to",
  "lying on top of",
  "making",
  "mixed with",
  "mounted on",
  "moving",
  "on the back of",
  "on the edge of",
  "on the front of",
  "on the other side of",
  "opening",
  "painted on",
  "parked at",
  "parked beside",
  "parked by",
  "parked in",
  "parked in front of",
  "parked near",
  "parked next to",
  "perched on",
  "petting",
  "piled on",
  "playing",
  "playing in",
  "playing on",
  "playing with",
  "pouring",
  "reaching for",
  "reading",
  "reflected on",
  "riding on",
  "running in",
  "running on",
  "running through",
  "seen through",
  "sitting behind",
  "sitting beside",
  "sitting by",
  "sitting in front of",
  "sitting near",
  "sitting next to",
  "sitting under",
  "skiing down",
  "skiing on",
  "sleeping in",
  "sleeping on",
  "smiling at",
  "sniffing",
  "splashing",
  "sprinkled on",
  "stacked on",
  "standing against",
  "standing around",
  "standing behind",
  "standing beside",
  "standing in front of",
  "standing near",
  "standing next to",
  "staring at",
  "stuck in",
  "surrounding",
  "swimming in",
  "swinging",
  "talking to",
  "topped with",
  "touching",
  "traveling down",
  "traveling on",
  "tying",
  "typing on",
  "underneath",
  "wading in",
  "waiting for",
  "walking across",
  "walking by",
  "walking down",
  "walking next to",
  "walking through",
  "working in",
  "working on",
  "worn on",
  "wrapped around",
  "wrapped in",
  "by",
  "of",
  "near",
  "next to",
  "with",
  "beside",
  "on the side of",
  "around",
]);

/** VG-Attribution's macro accuracy counts only attribute pairs with at least this many items. */
export const ARO_MIN_ATTRIBUTE_ITEMS = 25;

/** ARO's own metric for one kind: the mean of per-group accuracies over the groups it keeps. */
export interface MacroAccuracy {
  /** the kind ("relation", "attribution") */
  readonly kind: string;
  /** mean accuracy over the kept groups (NaN when none is kept) */
  readonly accuracy: number;
  /** its standard error, √(Σ se²)/G over the independent groups */
  readonly se: number;
  /** groups averaged */
  readonly groups: number;
  /** groups left out (symmetric relations; attribute pairs with fewer than 25 items) */
  readonly excluded: number;
}

/**
 * ARO's macro accuracy per kind (mertyg/vision-language-models-are-bows): VG-Relation averages
 * the per-relation accuracies after dropping {@link ARO_SYMMETRIC_RELATIONS}; VG-Attribution
 * averages over attribute pairs with ≥ {@link ARO_MIN_ATTRIBUTE_ITEMS} items. Other kinds (COCO /
 * Flickr order) have one group, their micro accuracy.
 *
 * @example
 * ```ts
 * import { macroAccuracy } from "./relations-result.ts";
 * const groups = [{ name: "on", n: 4, correct: 4, accuracy: 1, se: 0 },
 *   { name: "near", n: 10, correct: 0, accuracy: 0, se: 0 }]; // "near" is symmetric: left out
 * const [m] = macroAccuracy([{ kind: "relation", groups }]);
 * console.assert(m.accuracy === 1 && m.groups === 1 && m.excluded === 1);
 * ```
 */
export function macroAccuracy(
  kinds: readonly { readonly kind: string; readonly groups: readonly Accuracy[] }[],
): MacroAccuracy[] {
  return kinds.map(({ kind, groups }) => {
    const keep = (g: Accuracy) =>
      kind === "relation"
        ? !ARO_SYMMETRIC_RELATIONS.has(g.name)
        : kind === "attribution"
        ? g.n >= ARO_MIN_ATTRIBUTE_ITEMS
        : true;
    const kept = groups.filter(keep);
    const accuracy = kept.length ? kept.reduce((s, g) => s + g.accuracy, 0) / kept.length : NaN;
    const se = kept.length
      ? Math.sqrt(kept.reduce((s, g) => s + g.se * g.se, 0)) / kept.length
      : NaN;
    return { kind, accuracy, se, groups: kept.length, excluded: groups.length - kept.length };
  });
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
  /** ARO's macro accuracy per kind ({@link macroAccuracy}), beside the micro `byKind` */
  readonly macro: readonly MacroAccuracy[];
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
    this.macro = macroAccuracy(
      this.byKind.map((k) => ({
        kind: k.name,
        groups: grouped(this.items.filter((i) => i.kind === k.name), (i) => i.group),
      })),
    );
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
      macro: this.macro,
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
      ...this.macro.map((m) =>
        `${`macro ${m.kind}`.padEnd(width)} ${(100 * m.accuracy).toFixed(1).padStart(6)} % ± ${
          (100 * m.se).toFixed(1).padStart(4)
        }  (ARO's metric: ${m.groups} groups, ${m.excluded} left out)`
      ),
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

/**
 * Items grouped by `key`, in a fixed order: rows reach a results file in the order they finish
 * (which packed rows in flight change), and a summary rebuilt from the file must list what the
 * study listed. Kinds come in ARO's order (relation, attribution), everything else by name.
 */
function grouped(
  items: readonly RelationRecord[],
  key: (item: RelationRecord) => string,
): Accuracy[] {
  const groups = new Map<string, RelationRecord[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  const rank = (name: string) => ["relation", "attribution"].indexOf(name) >>> 0; // others last
  return [...groups]
    .sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, members]) => accuracyOf(name, members));
}
