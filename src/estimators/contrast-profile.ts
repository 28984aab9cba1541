/**
 * Which calibrated profile a query's draws come from (issue 15). A calibrated profile holds, next
 * to the model's profile for any contrast, one per word calibration saw and one for whole prompts
 * against the null prompt ({@link LogSnrProfile}). A query's contrasts share their (α, ε) draws,
 * so the query gets one density: the mean, over its contrasts, of each contrast's normalised mean
 * squared integrand (a profile's masses squared), fitted ∝ √ as calibration fits it. When each
 * contrast's profile is right, that density minimises the sum of the contrasts' variances, each
 * scaled to count the same; a one-word query (`about(word)`) gets its word's profile exactly.
 *
 * - a contrast against the null prompt uses the whole-prompt profile;
 * - a contrast that removes words uses each removed word's profile (the model's profile for a word
 *   calibration did not see), averaged over the removed words.
 *
 * What is estimated does not change: every proposal estimates the same integral.
 *
 * @module
 */
import type { ContrastProfile, LogSnrProfile, ResolvedProposal } from "../numerics/proposal.ts";
import { promptWords } from "../text/prompt.ts";

/**
 * The proposal of a plan's draws: for a fitted proposal whose profile has per-word or
 * whole-prompt profiles, the profile whose masses are its contrasts' (see the module); any other
 * proposal as it is.
 *
 * @example
 * ```ts
 * import { planProposal } from "./contrast-profile.ts";
 * import { contrastPlan } from "./contrasts.ts";
 * const profile = { kind: "infodiff.logSnrProfile", version: 1, model: { name: "m", shape: [1, 1, 1] },
 *   edges: [0, 1, 2], mass: [0.5, 0.5], words: { red: { mass: [0.9, 0.1], contrasts: 3 } },
 *   calibration: {} } as const;
 * const fitted = { kind: "fitted", lambda: 0.1, profile } as const;
 * const about = planProposal(fitted, contrastPlan([["a red circle", "a circle"]]));
 * console.assert(about.kind === "fitted" && Math.abs(about.profile.mass[0] - 0.9) < 1e-12);
 * const other = planProposal(fitted, contrastPlan([["a red circle", "a red"]]));
 * console.assert(other.kind === "fitted" && Math.abs(other.profile.mass[0] - 0.5) < 1e-12);
 * ```
 */
export function planProposal(
  proposal: ResolvedProposal,
  plan: {
    readonly prompts: readonly string[];
    readonly contrasts: readonly { readonly with: number; readonly without: number }[];
  },
): ResolvedProposal {
  if (proposal.kind !== "fitted") return proposal;
  const { profile } = proposal;
  // a plan of denoising errors alone (the likelihood) has no contrast to place: the model's
  if ((!profile.words && !profile.wholePrompt) || plan.contrasts.length === 0) return proposal;
  const mean = meanOfRows(
    plan.contrasts.map((c) =>
      contrastSquares(profile, plan.prompts[c.with], plan.prompts[c.without])
    ),
  );
  return { ...proposal, profile: { ...profile, mass: profileMasses(mean) } };
}

/**
 * The calibrated profiles each of a plan's contrasts draws from, by name: "whole prompt", a word
 * ("red"), or "model" (a word calibration did not see); several names for a contrast that removes
 * several words. For `query.plan()`, which shows them before anything runs.
 *
 * @example
 * ```ts
 * import { contrastProfileNames } from "./contrast-profile.ts";
 * const profile = { kind: "infodiff.logSnrProfile", version: 1, model: { name: "m", shape: [1, 1, 1] },
 *   edges: [0, 1, 2], mass: [0.5, 0.5], words: { red: { mass: [0.9, 0.1], contrasts: 3 } },
 *   calibration: {} } as const;
 * const plan = { prompts: ["a red circle", "a circle", "a", ""],
 *   contrasts: [{ with: 0, without: 1 }, { with: 0, without: 2 }, { with: 0, without: 3 }] };
 * // no whole-prompt profile here, so the contrast against "" draws from the model's
 * console.assert(contrastProfileNames(profile, plan).map((n) => n.join("+")).join() === "red,red+model,model");
 * ```
 */
export function contrastProfileNames(
  profile: LogSnrProfile,
  plan: {
    readonly prompts: readonly string[];
    readonly contrasts: readonly { readonly with: number; readonly without: number }[];
  },
): string[][] {
  return plan.contrasts.map((c) =>
    contrastProfiles(profile, plan.prompts[c.with], plan.prompts[c.without]).map((p) => p.name)
  );
}

/** A contrast's normalised mean squared integrand per bin, from the profiles it uses. */
function contrastSquares(profile: LogSnrProfile, richer: string, poorer: string): number[] {
  return meanOfRows(contrastProfiles(profile, richer, poorer).map((p) => squaresOf(p.profile)));
}

/** The profiles a contrast uses: the whole prompt's, or each removed word's (or the model's). */
function contrastProfiles(
  profile: LogSnrProfile,
  richer: string,
  poorer: string,
): { name: string; profile: Pick<ContrastProfile, "mass"> }[] {
  const removed = removedWords(richer, poorer);
  if (removed === undefined) {
    return [
      profile.wholePrompt
        ? { name: "whole prompt", profile: profile.wholePrompt }
        : { name: "model", profile },
    ];
  }
  if (removed.length === 0) return [{ name: "model", profile }];
  return removed.map((w) => {
    const own = Object.hasOwn(profile.words ?? {}, w) ? profile.words![w] : undefined;
    return own ? { name: w, profile: own } : { name: "model", profile };
  });
}

/**
 * The words a contrast removes: the richer prompt's words less the poorer's, counted with
 * multiplicity; `undefined` for a contrast against the null prompt (the whole prompt's). The one
 * rule by which calibration files a contrast's profile and a query finds it again.
 *
 * @example
 * ```ts
 * import { removedWords } from "./contrast-profile.ts";
 * console.assert(removedWords("a red circle", "a _ circle")?.join() === "red");
 * console.assert(removedWords("a red a", "a red")?.join() === "a");
 * console.assert(removedWords("a red circle", "") === undefined);
 * ```
 */
export function removedWords(richer: string, poorer: string): string[] | undefined {
  const poorerWords = promptWords(poorer).map((w) => w.word);
  if (poorerWords.length === 0) return undefined;
  const left = new Map<string, number>();
  for (const w of poorerWords) left.set(w, (left.get(w) ?? 0) + 1);
  return promptWords(richer).map((w) => w.word).filter((w) => {
    const n = left.get(w) ?? 0;
    if (n > 0) left.set(w, n - 1);
    return n === 0;
  });
}

/** Masses ∝ √(mean squares), so the mean squares are the masses squared, normalised to sum to 1. */
function squaresOf(profile: Pick<ContrastProfile, "mass">): number[] {
  return unitSum(profile.mass.map((m) => m * m));
}

/** The element-wise mean of equally long rows. */
function meanOfRows(rows: readonly ArrayLike<number>[]): number[] {
  return Array.from(rows[0], (_, b) => rows.reduce((s, row) => s + row[b], 0) / rows.length);
}

/**
 * Values scaled to sum to 1.
 *
 * @example
 * ```ts
 * import { unitSum } from "./contrast-profile.ts";
 * console.assert(unitSum([1, 3]).join() === "0.25,0.75");
 * ```
 */
export function unitSum(values: ArrayLike<number>): number[] {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return Array.from(values, (v) => v / total);
}

/**
 * A profile's bin masses from each bin's mean squared integrand (bins of equal width): ∝ its
 * square root, the variance-optimal importance density for a piecewise-constant integrand scale;
 * bins no draw reached (0) get the smallest mass of those that were reached.
 *
 * @example
 * ```ts
 * import { profileMasses } from "./contrast-profile.ts";
 * // √ of 4, 1, 0 → 2, 1 and the unreached bin at the smallest, 1: masses 2/4, 1/4, 1/4
 * console.assert(profileMasses([4, 1, 0]).join() === "0.5,0.25,0.25");
 * ```
 */
export function profileMasses(meanSquares: ArrayLike<number>): number[] {
  const root = Array.from(meanSquares, (v) => Math.sqrt(v));
  const floor = Math.min(...root.filter((v) => v > 0));
  return unitSum(root.map((v) => v > 0 ? v : floor));
}
