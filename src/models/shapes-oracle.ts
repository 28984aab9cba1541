/**
 * The exact world model: the Bayes-optimal denoiser of a shapes world's finite set of scenes, a
 * Gaussian mixture with one narrow component per scene ({@link mixtureDenoiser}). It gives the true
 * information of every caption and word, the ceiling a learned model is measured against.
 *
 * A bag of words cannot tell "a red circle left of a blue square" from "a blue square left of a red
 * circle" or from "a blue circle left of a red square". So besides its caption's words, each
 * component carries *binding tokens*, and a prompt is parsed with the world's grammar into the same
 * tokens before it conditions the mixture:
 * - object tokens: the named attributes of one object run together, for every subset of two or more
 *   ("smallredcircle", "smallred", "smallcircle", "redcircle");
 * - relation tokens: a subset of the first object's attributes, the relation, a subset of the second
 *   object's ("redcircleleftofbluesquare", "circleleftofblue", "leftof", …).
 * A prompt then selects the scenes whose caption contains it in this bound sense: "a red circle"
 * selects scenes with a red circle; a caption with one word removed selects the scenes whose caption
 * agrees with the rest. Words outside the vocabulary are ignored, as by the mixture; a prompt that
 * no scene's caption contains has no conditional density and is refused with a PromptError (for a
 * relation test that is a false caption: p(x | caption) = 0).
 *
 * Use it on the world's own scenes (build the oracle from the world the items come from): it is the
 * exact denoiser of that finite set. A held-out image lies far from every narrow component, where
 * the exact answer is dominated by its distance to the nearest stored scene (~10⁵ nats), not by
 * the caption, and where most captions of a small world have no support.
 *
 * @module
 */
import { InvalidArgumentError, PromptError } from "../errors.ts";
import { type MixtureCondition, type MixtureDenoiser, mixtureDenoiser } from "./mixture.ts";
import { promptWords } from "../text/prompt.ts";
import { COLOURS, RELATIONS, SHAPES, SIZES } from "../datasets/shapes/caption.ts";
import type { ShapesScene, ShapesWorld } from "../datasets/shapes/world.ts";

/**
 * Default per-dimension variance of a component, 1e-3 (σ ≈ 0.032 in [−1, 1] units, 4 grey levels
 * of 255). Small enough that components never overlap (two different scenes differ in at least
 * ~20 pixels × 3 channels by up to 2, a squared distance ≳ 50 against d·v ≈ 3 for 32×32×3), so
 * the mixture is the finite dataset itself; large enough (200× the variance of 8-bit quantisation,
 * 5e-6) that it is a smooth density of the stored images rather than of their quantisation.
 */
export const SHAPES_ORACLE_VARIANCE = 1e-3;

/** Options of {@link shapesDenoiser} (and `shapesOracle`). */
export interface ShapesOracleOptions {
  /** per-dimension variance of each component (default {@link SHAPES_ORACLE_VARIANCE}) */
  readonly variance?: number;
  /** add binding tokens (default true); false gives the plain bag-of-words oracle */
  readonly binding?: boolean;
  /** items per predictNoise call (default 16: each item costs scenes × c·h·w work) */
  readonly batchSize?: number;
}

/** The shapes oracle's denoiser: a {@link MixtureDenoiser} over a world's scenes. */
export interface ShapesDenoiser extends MixtureDenoiser {
  /** the world whose scenes are the components (component k is scene k + 1) */
  readonly world: ShapesWorld;
  /** the words and binding tokens a prompt conditions on (in the oracle's vocabulary or not) */
  promptTokens(prompt: string): string[];
}

/**
 * Builds the oracle of a world: component k = N(scene k's data, variance·I) carrying scene k's
 * caption words and binding tokens, equal weights. Cost per predicted item ∝ scenes × 3·size².
 *
 * @example
 * ```ts
 * import { shapesDenoiser } from "./shapes-oracle.ts";
 * import { shapesWorld } from "../datasets/shapes/world.ts";
 * const oracle = shapesDenoiser(shapesWorld({ seed: 1, count: 50 }));
 * const scene = oracle.world.scenes[0];
 * // log p(x | its caption) − log p(x) > 0: the caption is informative about its own image
 * const x = scene.toData();
 * console.assert(oracle.logDensity(x, scene.caption) > oracle.logDensity(x, ""));
 * ```
 */
export function shapesDenoiser(
  world: ShapesWorld,
  options: ShapesOracleOptions = {},
): ShapesDenoiser {
  const binding = options.binding ?? true;
  const variance = options.variance ?? SHAPES_ORACLE_VARIANCE;
  const components = world.scenes.map((scene) => ({
    words: binding
      ? sceneTokens(scene)
      : [...new Set(promptWords(scene.caption).map((w) => w.word))],
    mean: scene.toData(),
    variance,
  }));
  const mixture = mixtureDenoiser({
    shape: [3, world.size, world.size],
    components,
    name: `shapes oracle (${world.scenes.length} ${world.split} scenes, seed ${world.seed})`,
    batchSize: options.batchSize ?? 16,
  });
  const vocabulary = new Set(components.flatMap((c) => c.words));

  const promptTokens = (prompt: string): string[] => {
    const words = promptWords(prompt).map((w) => w.word);
    return binding ? [...new Set([...words, ...bindingTokens(words, prompt)])] : words;
  };
  // The mixture reads words from a prompt string: hand it the prompt with its tokens appended.
  const bound = (prompt: string): string => {
    if (!binding) return prompt;
    const tokens = bindingTokens(promptWords(prompt).map((w) => w.word), prompt);
    const unseen = tokens.filter((t) => !vocabulary.has(t));
    if (unseen.length > 0) {
      throw new PromptError(
        `no scene of the oracle's world has a caption that binds "${unseen[0]}" as the prompt ` +
          `"${prompt}" does; expected a prompt that some scene's caption contains`,
      );
    }
    return tokens.length ? `${prompt} ${tokens.join(" ")}` : prompt;
  };
  const conditions = new Map<string, MixtureCondition>();
  const condition = (prompt: string): MixtureCondition => {
    if (typeof prompt !== "string") {
      throw new InvalidArgumentError(`prompt must be a string, got ${typeof prompt}`);
    }
    let found = conditions.get(prompt);
    if (!found) {
      found = { ...mixture.condition(bound(prompt)), prompt };
      conditions.set(prompt, found);
    }
    return found;
  };

  const oracle: ShapesDenoiser = {
    ...mixture,
    world,
    promptTokens,
    condition,
    knownWords: (prompt) => mixture.knownWords(bound(prompt)),
    // the executor turns a throw (a bad prompt) into a rejection
    encode: (prompt) => new Promise((resolve) => resolve(condition(prompt))),
    logDensity: (x, prompt) => mixture.logDensity(x, bound(prompt)),
    sample: (prompt, sampleOptions) => mixture.sample(bound(prompt), sampleOptions),
  };
  return oracle;
}

/** One object as a prompt describes it: the attributes it names (possibly partial). */
interface PromptObject {
  size?: string;
  colour?: string;
  shape?: string;
}

const RANK: Record<string, number> = Object.fromEntries([
  ...SIZES.map((w) => [w, 0]),
  ...COLOURS.map((w) => [w, 1]),
  ...SHAPES.map((w) => [w, 2]),
]);
const KIND = ["size", "colour", "shape"] as const;
const RELATION_WORDS = new Set(["left", "right", "above", "below", "of"]);

/**
 * Parses prompt words with the world's grammar (tolerating missing words) into objects and the
 * relation between the first two, and returns their binding tokens. A new object starts at "a",
 * "and" or a relation word after an object, or when an attribute repeats or comes out of order
 * ("a red circle blue square" has two objects).
 */
function bindingTokens(words: readonly string[], prompt: string): string[] {
  const objects: PromptObject[] = [];
  let current: PromptObject = {};
  const relationWords: string[] = [];
  let relationAfter = -1; // number of finished objects when the relation phrase began
  const finish = () => {
    if (Object.keys(current).length > 0) objects.push(current);
    current = {};
  };
  for (const word of words) {
    if (word in RANK) {
      const rank = RANK[word];
      const highest = Math.max(-1, ...Object.keys(current).map((k) => KIND.indexOf(k as never)));
      if (rank <= highest) finish();
      current[KIND[rank]] = word;
    } else if (word === "a" || word === "and") {
      finish();
    } else if (RELATION_WORDS.has(word)) {
      finish();
      if (relationAfter >= 0 && relationAfter !== objects.length) {
        throw new PromptError(
          `the prompt "${prompt}" has more than one relation; shapes captions relate two objects ` +
            `once ("a red circle left of a blue square")`,
        );
      }
      relationAfter = objects.length;
      relationWords.push(word);
    }
  }
  finish();
  const tokens = objects.flatMap((o) => {
    const named = describe(o);
    return named.length >= 2 ? [named.join("")] : [];
  });
  const relation = relationName(relationWords, prompt);
  if (relation !== undefined) {
    const a = objects[relationAfter - 1], b = objects[relationAfter];
    tokens.push(`${a ? describe(a).join("") : ""}${relation}${b ? describe(b).join("") : ""}`);
  }
  return tokens;
}

function describe(o: PromptObject): string[] {
  return KIND.flatMap((k) => (o[k] ? [o[k]!] : []));
}

/** "left of" → "leftof"; "of" alone names no relation; two different relations are an error. */
function relationName(words: readonly string[], prompt: string): string | undefined {
  const kinds = [...new Set(words.filter((w) => w !== "of"))];
  if (kinds.length > 1) {
    throw new PromptError(
      `the prompt "${prompt}" names relations ${kinds.join(" and ")}; expected one of ` +
        RELATIONS.join(", "),
    );
  }
  if (kinds.length === 0) return undefined;
  return kinds[0] === "left" || kinds[0] === "right" ? `${kinds[0]}of` : kinds[0];
}

/** Every word and binding token a scene's caption carries (all subsets, see the module doc). */
function sceneTokens(scene: ShapesScene): string[] {
  const words = promptWords(scene.caption).map((w) => w.word);
  const named = scene.objects.map((o) =>
    o.sizeNamed ? [o.size, o.colour, o.shape] : [o.colour, o.shape]
  );
  const tokens = new Set(words);
  for (const attributes of named) {
    for (const subset of subsets(attributes)) if (subset.length >= 2) tokens.add(subset.join(""));
  }
  if (scene.relation !== undefined) {
    const relation = scene.relation.replace(" ", "");
    for (const a of subsets(named[0])) {
      for (const b of subsets(named[1])) tokens.add(`${a.join("")}${relation}${b.join("")}`);
    }
  }
  return [...tokens];
}

/** All subsets of a list (order kept), the empty one included. */
function subsets<T>(items: readonly T[]): T[][] {
  return items.reduce<T[][]>((all, item) => all.concat(all.map((s) => [...s, item])), [[]]);
}
