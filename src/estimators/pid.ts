/**
 * Partial information decomposition of two words of a prompt (DiffusionPID, REFERENCE §9):
 * redundancy R, unique U_A = I_A − R, U_B = I_B − R and synergy S = I_AB − I_A − I_B + R, in the
 * plain form (each word alone against the null prompt) and the conditional form (every term
 * conditioned on the rest of the prompt), all from one pass on common draws.
 *
 * The paper applies PID "at both the image and pixel level", and the two are different
 * decompositions, both reported and named:
 * - image level (`estimate`, with SE and `biasCorrected`): R = min(I_A, I_B), the minimum-mutual-
 *   information (MMI) redundancy of the two image-level informations;
 *   I_A = R + U_A, I_B = R + U_B, I_AB = R + U_A + U_B + S.
 * - pixel level (`map`, and its sum `pixelTotal`): r(p) = min(i_A(p), i_B(p)) in every pixel, the
 *   paper's maps; the same identities hold in every pixel and so for the totals. Σ_p r(p) ≤ R: two
 *   words informing different pixels share nothing pixel by pixel, while their image-level
 *   informations still have a minimum.
 *
 * A word is removed from the prompt at every occurrence, at word boundaries ({@link removePhrase}):
 * the SDK's one rule for removing a word (`text/prompt.ts`).
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { Heatmap } from "../images/heatmap.ts";
import { JUPYTER_DISPLAY } from "../jupyter.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { normaliseWord, phraseOccurrences, removePhrase } from "../text/prompt.ts";
import { Random } from "../numerics/random.ts";
import type { ContrastResult } from "./contrasts.ts";
import { type ContrastPlan, contrastPlan, estimateContrasts } from "./contrasts.ts";
import { refuseTruncated } from "./conditional-information.ts";
import type { Provenance } from "./provenance.ts";
import { Estimate } from "./estimate.ts";
import type { EstimatorOptions } from "./options.ts";
import { checkPositiveInteger, resolveOptions } from "./options.ts";

/**
 * Specific-information redundancy (Williams–Beer I_min): each word is one value of a source
 * whose candidate values and prior are given; the source's specific information about the image
 * is Σ_y p(y | x)·i(x; y) with p(y | x) ∝ p(y)·exp(i(x; y)), and R is the smaller of the two.
 * It needs the "standard" estimator (exp(i) is a likelihood ratio only in that form), so with this
 * measure the decomposition runs with "standard" by default and refuses an explicit "orthogonal".
 */
export interface SpecificRedundancy {
  /** marks this measure */
  readonly kind: "specific";
  /** candidate words for each source; each list must contain that source's word */
  readonly candidates: { readonly a: readonly string[]; readonly b: readonly string[] };
  /** prior probabilities of the candidates (default uniform) */
  readonly prior?: { readonly a?: readonly number[]; readonly b?: readonly number[] };
}

/** How redundancy is measured: the minimum of the two informations (default) or specific information. */
export type RedundancyMeasure = "minimum" | SpecificRedundancy;

/** Options of {@link partialInformation}. */
export interface PidOptions extends EstimatorOptions {
  /** redundancy measure (default "minimum") */
  readonly redundancy?: RedundancyMeasure;
  /** bootstrap resamples of the draws for the terms' standard errors (default 500) */
  readonly resamples?: number;
}

/**
 * One PID term at both levels: the image-level value with its standard error, and the pixel-level
 * map with its total. For I_A, I_B and I_AB the two levels agree (the map sums to the estimate);
 * for R, U_A, U_B and S they are the two decompositions of the module doc.
 */
export interface PidTerm {
  /**
   * image-level value in nats, with its bootstrap standard error (the raw plug-in value):
   * R = min(I_A, I_B) (or the smaller specific information), U and S by the identities
   */
  readonly estimate: Estimate;
  /**
   * the bootstrap bias-corrected image-level value: R becomes 2·R − (mean of R over the
   * resamples), and U_A, U_B, S follow from it by the same identities (so they still add up). The
   * minimum of two noisy estimates is biased downward (R too low, the uniques too high); where the
   * two informations are equal the correction removes only part of it (about a third on the
   * exact oracle, docs/performance.md). Equal to the raw value for I_A, I_B and I_AB (means are unbiased); the
   * pixel level (maps, `pixelTotal`) stays raw (per-pixel draws are not kept).
   */
  readonly biasCorrected: number;
  /**
   * pixel-level value in every pixel (data resolution): r(p) = min(i_A(p), i_B(p)) (or the smaller
   * specific-information map), u_A(p) = i_A(p) − r(p), u_B(p) = i_B(p) − r(p),
   * s(p) = i_AB(p) − i_A(p) − i_B(p) + r(p)
   */
  readonly map: Heatmap;
  /**
   * the pixel-level term's image total, Σ_p map(p); equal to the estimate for I_A, I_B, I_AB, and
   * at most the image-level R for R. A raw plug-in without standard error or bias correction (per-
   * pixel draws are not kept); the minimum in each pixel is biased down by that pixel's noise,
   * more so the more pixels.
   */
  readonly pixelTotal: number;
}

/** The decomposition in one form (plain or conditional). */
export interface PidTerms {
  /** the condition everything is measured against ("" for the plain form) */
  readonly context: string;
  /** I_A: information of word A */
  readonly informationA: PidTerm;
  /** I_B: information of word B */
  readonly informationB: PidTerm;
  /** I_AB: information of both words together */
  readonly informationBoth: PidTerm;
  /** R */
  readonly redundancy: PidTerm;
  /** U_A = I_A − R */
  readonly uniqueA: PidTerm;
  /** U_B = I_B − R */
  readonly uniqueB: PidTerm;
  /** S = I_AB − I_A − I_B + R */
  readonly synergy: PidTerm;
}

const TERM_NAMES = [
  "informationA",
  "informationB",
  "informationBoth",
  "redundancy",
  "uniqueA",
  "uniqueB",
  "synergy",
] as const;

/**
 * The result of {@link partialInformation}: both forms of the decomposition.
 *
 * @example
 * ```ts
 * import { PidResult } from "./pid.ts";
 * console.assert(typeof PidResult === "function");
 * ```
 */
export class PidResult {
  /** How the result was made, when it came from a query (see `withProvenance`). */
  declare readonly provenance?: Provenance;

  /**
   * Creates the result.
   * @param prompt the prompt
   * @param wordA the first word
   * @param wordB the second word
   * @param plain each word alone against the null prompt
   * @param conditional each term conditioned on the rest of the prompt
   */
  constructor(
    readonly prompt: string,
    readonly wordA: string,
    readonly wordB: string,
    readonly plain: PidTerms,
    readonly conditional: PidTerms,
  ) {}

  /**
   * Rows `{ form, term, nats, se, biasCorrected, pixelTotal }` for tables and charts: the
   * image-level value, its SE and bias-corrected value, and the pixel-level total.
   */
  rows(): {
    form: "plain" | "conditional";
    term: string;
    nats: number;
    se: number;
    biasCorrected: number;
    pixelTotal: number;
  }[] {
    return (["plain", "conditional"] as const).flatMap((form) =>
      TERM_NAMES.map((term) => ({
        form,
        term,
        nats: this[form][term].estimate.nats,
        se: this[form][term].estimate.se,
        biasCorrected: this[form][term].biasCorrected,
        pixelTotal: this[form][term].pixelTotal,
      }))
    );
  }

  /** Plain data (maps included). */
  toJSON(): Record<string, unknown> {
    const form = (terms: PidTerms) => ({
      context: terms.context,
      ...Object.fromEntries(
        TERM_NAMES.map((t) => [t, {
          estimate: terms[t].estimate.toJSON(),
          biasCorrected: terms[t].biasCorrected,
          pixelTotal: terms[t].pixelTotal,
          map: terms[t].map.toJSON(),
        }]),
      ),
    });
    return {
      prompt: this.prompt,
      wordA: this.wordA,
      wordB: this.wordB,
      plain: form(this.plain),
      conditional: form(this.conditional),
      ...(this.provenance ? { provenance: this.provenance } : {}),
    };
  }

  /**
   * A text table of both forms: image level (raw ± SE, [bias-corrected]) and the pixel-level
   * total (Σ px).
   */
  toString(): string {
    const cell = (t: PidTerm) =>
      `${t.estimate.nats.toFixed(4).padStart(9)} ${t.estimate.seText()} [${
        t.biasCorrected.toFixed(4).padStart(8)
      }] ${t.pixelTotal.toFixed(4).padStart(9)}`;
    const line = (name: string, a: PidTerm, b: PidTerm) =>
      `${name.padEnd(16)} ${cell(a)}   ${cell(b)}`;
    const head = (form: string) => `${form}: image level`.padStart(29) + "Σ px".padStart(10);
    return [
      `PID of "${this.wordA}" and "${this.wordB}" in "${this.prompt}" (nats; image level ` +
      `± SE [bias-corrected]; pixel level Σ px: the maps' totals, R = Σ min(i_A(p), i_B(p)))`,
      `${"term".padEnd(16)} ${head("plain")}   ${head("conditional")}`,
      ...TERM_NAMES.map((t) => line(t, this.plain[t], this.conditional[t])),
    ].join("\n");
  }

  /** Shows the text table in Jupyter. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

/** The contrasts of one PID form: I_A, I_B, I_AB, then candidate informations (specific). */
export interface PidForm {
  /** what every term is conditioned on ("" for the plain form) */
  readonly context: string;
  /** (richer, poorer) prompts of I_A, I_B and I_AB */
  readonly base: readonly (readonly [string, string])[];
  /** (richer, poorer) prompts of the candidates of word A (specific redundancy) */
  readonly candidatesA: readonly (readonly [string, string])[];
  /** (richer, poorer) prompts of the candidates of word B (specific redundancy) */
  readonly candidatesB: readonly (readonly [string, string])[];
}

/**
 * The contrast plan of {@link partialInformation}: both forms' contrasts (plain against "",
 * conditional against the prompt without both words) on one set of distinct prompts. Each word is
 * removed at every occurrence, at word boundaries ({@link removePhrase}): a repeated word left in
 * its own context would make every conditional term exactly 0.
 *
 * @throws {PromptError} when a word is not in the prompt
 * @throws {InvalidArgumentError} when the two words are the same
 *
 * @example
 * ```ts
 * import { pidPlan } from "./pid.ts";
 * const { plan } = pidPlan("a red circle", "red", "circle");
 * console.assert(plan.contrasts.length === 6 && plan.prompts.includes("a"));
 * const { forms } = pidPlan("a red circle near a red square", "red", "circle");
 * console.assert(forms.conditional.context === "a near a square");
 * ```
 */
export function pidPlan(
  prompt: string,
  wordA: string,
  wordB: string,
  redundancy?: RedundancyMeasure,
): {
  plan: ContrastPlan;
  forms: { plain: PidForm; conditional: PidForm };
  candidates: CandidateSet | undefined;
} {
  const a = normaliseWord(wordA), b = normaliseWord(wordB);
  if (a === b) {
    throw new InvalidArgumentError(`PID needs two different words, got "${a}" twice`);
  }
  const withoutA = removePhrase(prompt, a), withoutB = removePhrase(prompt, b);
  const context = removePhrase(withoutA, b);
  // the plain form's joint prompt names the two words once each, in the prompt's order
  const first = (word: string) => phraseOccurrences(prompt, word)[0][0];
  const both = first(a) <= first(b) ? [a, b] : [b, a];
  const measure = redundancy ?? "minimum";
  const candidates = measure === "minimum" ? undefined : checkSpecific(measure, a, b);

  // Each form is a list of contrasts: I_A, I_B, I_AB, then candidate informations (specific).
  const contrast = (withPrompt: string, withoutPrompt: string) =>
    [withPrompt, withoutPrompt] as const;
  // a candidate y of a word in the conditional form: the word replaced by y wherever it occurs
  const candidate = (text: string, word: string) => (y: string) =>
    contrast(removePhrase(text, word, { placeholder: y }), context);
  const forms = {
    plain: {
      context: "",
      base: [contrast(a, ""), contrast(b, ""), contrast(both.join(" "), "")],
      candidatesA: candidates?.a.map((y) => contrast(y, "")) ?? [],
      candidatesB: candidates?.b.map((y) => contrast(y, "")) ?? [],
    },
    conditional: {
      context,
      base: [contrast(withoutB, context), contrast(withoutA, context), contrast(prompt, context)],
      candidatesA: candidates?.a.map(candidate(withoutB, a)) ?? [],
      candidatesB: candidates?.b.map(candidate(withoutA, b)) ?? [],
    },
  };
  const plan = contrastPlan(
    Object.values(forms).flatMap((f) => [...f.base, ...f.candidatesA, ...f.candidatesB]),
  );
  return { plan, forms, candidates };
}

/**
 * Decomposes what two words of a prompt tell the model about an image.
 *
 * Plain form: I_A = i(x; A), I_B = i(x; B), I_AB = i(x; "A B") against "". Conditional form, with
 * c = the prompt without A and B (every occurrence): I_A = i(x; A | c) (prompt without B vs c), I_B
 * likewise, I_AB = i(x; A, B | c) (full prompt vs c). Each term is reported at image level
 * (`estimate`: R = min(I_A, I_B), with SE and `biasCorrected`) and at pixel level (`map`:
 * r(p) = min(i_A(p), i_B(p)), summing to `pixelTotal`); see the module doc for the identities each
 * satisfies. With the specific redundancy the maps' minimum is of the specific-information maps.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../query/oracles.ts";
 * import { partialInformation } from "./pid.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["sofa", "couch"], mean: [1, 0], variance: 0.2 }, { words: ["chair"], mean: [0, 1], variance: 0.2 }] });
 * const r = await partialInformation(model, model.sample("sofa", { seed: 1 }), "a sofa couch", "sofa", "couch", { samples: 30 });
 * console.assert(r.plain.uniqueA.estimate.nats === 0 && r.plain.synergy.estimate.nats === 0);
 * ```
 */
export async function partialInformation(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  wordA: string,
  wordB: string,
  options: PidOptions = {},
): Promise<PidResult> {
  const resamples = checkPositiveInteger("resamples", options.resamples ?? 500);
  refuseTruncated(model, prompt, [wordA, wordB]);
  const { plan, forms, candidates } = pidPlan(prompt, wordA, wordB, options.redundancy);
  const resolved = resolveOptions(model, pidEstimatorOptions(options));
  const outcome = await estimateContrasts(model, data, plan, resolved);

  let offset = 0;
  const take = (count: number) => outcome.contrasts.slice(offset, offset += count);
  const decompose = (form: PidForm): PidTerms => {
    const [ia, ib, iab] = take(3);
    const candA = take(form.candidatesA.length), candB = take(form.candidatesB.length);
    return decomposition(
      form.context,
      ia,
      ib,
      iab,
      candA,
      candB,
      candidates,
      resamples,
      resolved.seed,
    );
  };
  const plain = decompose(forms.plain);
  const conditional = decompose(forms.conditional);
  return new PidResult(prompt, normaliseWord(wordA), normaliseWord(wordB), plain, conditional);
}

/**
 * The estimator options of a decomposition: with the specific-information redundancy the
 * estimator is "standard" (its default there), and an explicit "orthogonal" is refused, since
 * exp(i) of the orthogonal form is not a likelihood ratio.
 *
 * @throws {InvalidArgumentError} for `estimator: "orthogonal"` with a specific redundancy
 *
 * @example
 * ```ts
 * import { pidEstimatorOptions } from "./pid.ts";
 * const specific = { kind: "specific", candidates: { a: ["red"], b: ["circle"] } } as const;
 * console.assert(pidEstimatorOptions({ redundancy: specific }).estimator === "standard");
 * console.assert(pidEstimatorOptions({}).estimator === undefined);
 * ```
 */
export function pidEstimatorOptions(options: PidOptions): PidOptions {
  if (options.redundancy === undefined || options.redundancy === "minimum") return options;
  if (options.estimator === "orthogonal") {
    throw new InvalidArgumentError(
      `the specific-information redundancy needs the "standard" estimator (p(y|x) ∝ ` +
        `p(y)·exp(i(x; y)) holds only for a likelihood ratio); got estimator "orthogonal". ` +
        `Expected estimator "standard" (the default with this measure) or redundancy "minimum"`,
    );
  }
  return { ...options, estimator: "standard" };
}

/** The candidate words of a specific-information redundancy, with their prior weights. */
export interface CandidateSet {
  /** candidates that word A is one of */
  readonly a: string[];
  /** candidates that word B is one of */
  readonly b: string[];
  /** prior weight of each candidate of A */
  readonly priorA: number[];
  /** prior weight of each candidate of B */
  readonly priorB: number[];
}

function checkSpecific(measure: SpecificRedundancy, a: string, b: string): CandidateSet {
  if (measure?.kind !== "specific") {
    throw new InvalidArgumentError(
      `unknown redundancy measure ${
        JSON.stringify(measure)
      }; expected "minimum" or { kind: "specific", candidates }`,
    );
  }
  const side = (
    word: string,
    list: readonly string[],
    prior: readonly number[] | undefined,
    name: string,
  ) => {
    const words = list.map(normaliseWord);
    if (!words.includes(word)) {
      throw new InvalidArgumentError(
        `candidates.${name} must contain the word "${word}", got [${words.join(", ")}]`,
      );
    }
    const p = prior ?? words.map(() => 1 / words.length);
    if (p.length !== words.length || p.some((v) => !(v > 0))) {
      throw new InvalidArgumentError(
        `prior.${name} must hold ${words.length} positive probabilities, got [${p.join(", ")}]`,
      );
    }
    const total = p.reduce((s, v) => s + v, 0);
    return { words, prior: p.map((v) => v / total) };
  };
  const sa = side(a, measure.candidates.a, measure.prior?.a, "a");
  const sb = side(b, measure.candidates.b, measure.prior?.b, "b");
  return { a: sa.words, b: sb.words, priorA: sa.prior, priorB: sb.prior };
}

/** Specific information Σ_y p(y|x)·i_y from candidate informations and the prior. */
function specificInformation(
  values: readonly number[],
  prior: readonly number[],
): { value: number; weights: number[] } {
  const logs = values.map((v, i) => Math.log(prior[i]) + v);
  const max = Math.max(...logs);
  const raw = logs.map((l) => Math.exp(l - max));
  const total = raw.reduce((s, v) => s + v, 0);
  const weights = raw.map((v) => v / total);
  return { value: weights.reduce((s, w, i) => s + w * values[i], 0), weights };
}

function decomposition(
  context: string,
  ia: ContrastResult,
  ib: ContrastResult,
  iab: ContrastResult,
  candA: ContrastResult[],
  candB: ContrastResult[],
  candidates: CandidateSet | undefined,
  resamples: number,
  seed: number,
): PidTerms {
  // The terms as a function of the mean of every contrast: evaluated once on all draws and
  // again on bootstrap resamples of the (paired) draws for the standard errors.
  const all = [ia, ib, iab, ...candA, ...candB];
  const terms = (means: number[]) => {
    const [va, vb, vab] = means;
    const r = candidates
      ? Math.min(
        specificInformation(means.slice(3, 3 + candA.length), candidates.priorA).value,
        specificInformation(means.slice(3 + candA.length), candidates.priorB).value,
      )
      : Math.min(va, vb);
    return [va, vb, vab, r, va - r, vb - r, vab - va - vb + r];
  };
  const means = all.map((c) => c.estimate.nats);
  const point = terms(means);
  const n = ia.perDraw.length;
  const boot = bootstrapTerms(all.map((c) => c.perDraw), ia.units, terms, resamples, seed);
  const redundancyMap = candidates
    ? pixelMinimum(
      weightedMap(
        candA,
        specificInformation(candA.map((c) => c.estimate.nats), candidates.priorA).weights,
      ),
      weightedMap(
        candB,
        specificInformation(candB.map((c) => c.estimate.nats), candidates.priorB).weights,
      ),
    )
    : pixelMinimum(ia.map, ib.map);
  const maps = [
    ia.map,
    ib.map,
    iab.map,
    redundancyMap,
    ia.map.add(redundancyMap.scale(-1)),
    ib.map.add(redundancyMap.scale(-1)),
    iab.map.add(ia.map.scale(-1)).add(ib.map.scale(-1)).add(redundancyMap),
  ];
  // Only R is a nonlinear function of the means: correct it (2·R − mean of the resampled R) and
  // derive the rest from the same identities, so the corrected terms still add up. I_A, I_B and
  // I_AB are means, unbiased: resampling them would only add noise.
  const redundancyShift = Number.isFinite(boot.means[3]) ? point[3] - boot.means[3] : 0;
  const corrected = point.map((value, t) =>
    t === 3 || t === 6
      ? value + redundancyShift
      : t === 4 || t === 5
      ? value - redundancyShift
      : value
  );
  // too few independent draws for an error: the terms have none either, whatever the bootstrap says
  const noError = ia.estimate.noStandardError;
  const term = (t: number): PidTerm => ({
    estimate: noError
      ? Estimate.withoutError(point[t], n, noError)
      : new Estimate(point[t], boot.errors[t], n),
    biasCorrected: corrected[t],
    map: maps[t],
    pixelTotal: maps[t].sum(),
  });
  return {
    context,
    informationA: term(0),
    informationB: term(1),
    informationBoth: term(2),
    redundancy: term(3),
    uniqueA: term(4),
    uniqueB: term(5),
    synergy: term(6),
  };
}

/**
 * Mean and standard deviation of every term over bootstrap resamples of the design's independent
 * units (draws, antithetic pairs or α groups: `units` gives each draw's), all contrasts resampled
 * together so their common draws stay paired.
 */
function bootstrapTerms(
  perDraw: Float64Array[],
  units: Int32Array,
  terms: (means: number[]) => number[],
  resamples: number,
  seed: number,
): { errors: number[]; means: number[] } {
  const n = perDraw[0].length;
  // per contrast, the sum over each unit's draws (units are consecutive runs of draws)
  const count = n === 0 ? 0 : units[n - 1] + 1;
  const sums = perDraw.map((values) => {
    const out = new Float64Array(count);
    values.forEach((v, i) => out[units[i]] += v);
    return out;
  });
  const random = new Random(seed);
  const samples: number[][] = [];
  const means = new Array<number>(perDraw.length);
  for (let r = 0; r < resamples && count > 1; r++) {
    means.fill(0);
    for (let k = 0; k < count; k++) {
      const u = random.int(count);
      for (let c = 0; c < perDraw.length; c++) means[c] += sums[c][u] / n;
    }
    samples.push(terms(means));
  }
  const size = TERM_NAMES.length; // what `terms` returns: one value per PID term
  if (samples.length < 2) {
    return { errors: new Array(size).fill(NaN), means: new Array(size).fill(NaN) };
  }
  const stats = Array.from({ length: size }, (_, t) => {
    const values = samples.map((s) => s[t]);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1));
    return { mean, sd };
  });
  return { errors: stats.map((s) => s.sd), means: stats.map((s) => s.mean) };
}

function pixelMinimum(a: Heatmap, b: Heatmap): Heatmap {
  return new Heatmap(a.width, a.height, a.data.map((v, i) => Math.min(v, b.data[i])));
}

function weightedMap(results: ContrastResult[], weights: number[]): Heatmap {
  return results.reduce(
    (sum, r, i) => sum.add(r.map.scale(weights[i])),
    Heatmap.zeros(results[0].map.width, results[0].map.height),
  );
}
