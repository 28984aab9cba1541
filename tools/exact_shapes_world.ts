/**
 * The exact denoiser of the shapes world's captions of one to three objects: E[ε | x_α, caption] under
 * p(x | caption) of the world's own generator (src/datasets/shapes/world.ts), every layout it can
 * draw for the caption a narrow Gaussian N(picture, v·I), weighted as the generator weighs it.
 *
 * Why it is cheap: a picture is black (−1 in every channel) with each object's mask painted in its
 * colour (+1 on the colour's channels), and the masks of a scene never overlap. So
 * ‖x_α − √s·μ‖² is the black picture's term plus one term per object, and a layout's posterior
 * log-weight is a sum of one term per object (2√s/τ · the object's colour channels of x_α summed
 * over its mask) plus the prior's. Pairs enter only through the generator's constraint (boxes
 * apart, the named relation clear), a 0/1 matrix over the two objects' positions: the posterior
 * marginals of each object's placement are two matrix–vector products per attribute assignment,
 * instead of a sum over 10⁵ explicit pictures of 3,072 values each. Three objects add the third's
 * constraint (apart from both others): for each allowed pair of the first two, the third's mass
 * outside the two rectangles of positions that clash with them is a summed-area-table sum, and
 * the third's own marginal comes from the pair (first, third) the same way ({@link tripleMass}).
 *
 * The prior, as `drawLayout` draws it: the colours and shapes of a scene are the first n of a
 * random permutation (distinct within a scene), each size is small or large with ½, whether the
 * caption names the size is a fair coin, and the positions are uniform over the layouts whose
 * boxes are apart and whose first two objects stand in a clear relation (rejection sampling), so a
 * layout with sizes S has weight 1 / N_valid(S). A caption fixes n, the attributes it names and
 * the relation; the layouts it allows share the rest of the prior.
 *
 * A prompt with a word removed ("a circle above a blue square") is not a caption the world writes;
 * it is read as the caption with that attribute left open — the conditional p(x | the other words)
 * of the world, as `measure_binding_ceiling`'s one-object mixture read it ("contains these words").
 * "" (every object count at once) is refused.
 *
 * @module
 */
import { drawShape, type ShapeName } from "../src/datasets/shapes/draw.ts";
import {
  COLOUR_RGB,
  type ColourName,
  COLOURS,
  type RelationName,
  SHAPES,
  type SizeName,
  SIZES,
} from "../src/datasets/shapes/caption.ts";
import {
  boxesApart,
  type CentredBox,
  hwcToChw,
  type PaintedObject,
  paintObjects,
  relationBetween,
  shapesGeometry,
} from "../src/datasets/shapes/world.ts";
import { sigmoid } from "../src/numerics/log-snr.ts";
import { promptWords } from "../src/text/prompt.ts";
import {
  checkModelData,
  type Condition,
  type Denoiser,
  imageArray,
  type ImageInput,
  type NoiseBatch,
} from "../src/models/denoiser.ts";
import { PromptError } from "../src/errors.ts";
import { logSumExp } from "../src/models/mixture.ts";
import { createHash } from "node:crypto";

/** What a prompt says about one object: each attribute named, or open. */
export interface ObjectSlot {
  readonly colour?: ColourName;
  readonly shape?: ShapeName;
  readonly size?: SizeName;
}

/** A parsed prompt: its objects in caption order and the relation of the first two, if named. */
export interface WorldCondition extends Condition {
  readonly objects: readonly ObjectSlot[];
  readonly relation?: RelationName;
}

/** One object's colour, shape and size. */
interface AttributeSet {
  readonly colour: ColourName;
  readonly shape: ShapeName;
  readonly size: SizeName;
}

const attributeKey = (o: AttributeSet) => `${o.colour} ${o.shape} ${o.size}`;

/** One assignment of every object's attributes that a condition allows, and its prior weight. */
interface Assignment {
  readonly objects: readonly AttributeSet[];
  /** log of the prior: uniform over assignments, times 1 / N_valid(sizes) */
  readonly logPrior: number;
}

/** The placements `drawLayout` tries before it draws new attributes. */
const PLACEMENT_ATTEMPTS = 5000;

const RELATION_WORDS: Readonly<Record<string, RelationName>> = {
  left: "left of",
  right: "right of",
  above: "above",
  below: "below",
};

/**
 * Reads a prompt of the world's grammar, with any colour, shape, size or relation word left out:
 * every object starts at its "a"; the relation words between the first two objects name the
 * relation.
 *
 * @throws {PromptError} a prompt of more than three objects, none, a word the world does not
 *   write, or an object named twice
 */
export function parseWorldPrompt(prompt: string): WorldCondition {
  const words = promptWords(prompt).map((w) => w.word);
  const objects: Record<string, string>[] = [];
  let relation: RelationName | undefined;
  for (const word of words) {
    if (word === "a") {
      objects.push({});
      continue;
    }
    const current = objects[objects.length - 1];
    const kind = (COLOURS as readonly string[]).includes(word)
      ? "colour"
      : (SHAPES as readonly string[]).includes(word)
      ? "shape"
      : (SIZES as readonly string[]).includes(word)
      ? "size"
      : undefined;
    if (kind && current && current[kind] === undefined) current[kind] = word;
    else if (word in RELATION_WORDS && objects.length === 1 && relation === undefined) {
      relation = RELATION_WORDS[word];
    } else if (
      !(word === "of" && objects.length === 1) && !(word === "and" && objects.length === 2)
    ) {
      throw new PromptError(
        `the exact shapes world cannot read "${word}" in "${prompt}"; expected a caption of ` +
          `one to three objects of the shapes world, with words left out`,
      );
    }
  }
  if (objects.length < 1 || objects.length > 3) {
    throw new PromptError(
      `the exact shapes world reads captions of one to three objects; "${prompt}" has ` +
        `${objects.length} objects`,
    );
  }
  return { prompt, objects: objects as ObjectSlot[], relation };
}

/** The exact denoiser, its pictures' positions, and the helpers its check and tests use. */
export interface ExactShapesWorld extends Denoiser {
  /** the picture of a layout (CHW in [−1, 1]), painted by the world's own `paintObjects` */
  picture(objects: readonly PaintedObject[]): Float32Array;
  /** every assignment a condition allows, with its prior weight (normalised) */
  assignments(condition: WorldCondition): readonly Assignment[];
  /** whether two placements satisfy the generator's constraint under a condition's relation */
  allowed(a: CentredBox, b: CentredBox, relation?: RelationName): boolean;
  /** every centre an object of a size can have */
  readonly centres: Readonly<Record<SizeName, readonly CentredBox[]>>;
}

/**
 * Builds the exact world's denoiser at an image size (32 for the committed models), its Gaussians'
 * variance `variance` (1e-3 as `measure_binding_ceiling`'s one-object mixture).
 */
export function exactShapesWorld(size = 32, variance = 1e-3): ExactShapesWorld {
  const geometry = shapesGeometry(size);
  const plane = size * size, d = 3 * plane;
  const centres = Object.fromEntries(SIZES.map((s) => {
    const radius = geometry.radius[s], span = size - 2 * radius + 1, list: CentredBox[] = [];
    for (let cy = radius; cy < radius + span; cy++) {
      for (let cx = radius; cx < radius + span; cx++) list.push({ cx, cy, radius });
    }
    return [s, list];
  })) as Record<SizeName, CentredBox[]>;
  // pixel indices of every (shape, size, centre) mask
  const masks = new Map<string, Int32Array[]>();
  for (const shape of SHAPES) {
    for (const s of SIZES) {
      masks.set(
        `${shape} ${s}`,
        centres[s].map((c) => {
          const mask = drawShape(shape, size, c.cx, c.cy, c.radius);
          return Int32Array.from(Array.from(mask).flatMap((v, p) => v ? [p] : []));
        }),
      );
    }
  }
  const allowed = (a: CentredBox, b: CentredBox, relation?: RelationName) => {
    if (!boxesApart(a, b, geometry.margin)) return false;
    const clear = relationBetween(a, b, geometry.margin);
    return relation === undefined ? clear !== undefined : clear === relation;
  };
  // 0/1 constraint matrices [first × second position], by sizes and relation ("" = any)
  const constraints = new Map<string, { matrix: Uint8Array; count: number }>();
  const constraint = (first: SizeName, second: SizeName, relation?: RelationName) => {
    const key = `${first} ${second} ${relation ?? ""}`;
    let found = constraints.get(key);
    if (!found) {
      const a = centres[first], b = centres[second], matrix = new Uint8Array(a.length * b.length);
      let count = 0;
      for (let i = 0; i < a.length; i++) {
        for (let j = 0; j < b.length; j++) {
          if (allowed(a[i], b[j], relation)) (matrix[i * b.length + j] = 1), count++;
        }
      }
      constraints.set(key, found = { matrix, count });
    }
    return found;
  };
  /**
   * log of an assignment's prior per layout, up to a constant: the generator keeps the attributes
   * it drew when one of 5,000 uniform placements is valid, else draws new ones, so an assignment
   * survives with 1 − (1 − f)^5000 (f: the valid share of placements) and each of its N_valid
   * layouts then has 1 / N_valid. −∞ where no layout is valid (large pairs at 16 px).
   */
  const logAttributePrior = (sizes: SizeName[]) => {
    const all = sizes.reduce((t, s) => t * centres[s].length, 1);
    const valid = sizes.length === 1
      ? all
      : sizes.length === 2
      ? constraint(sizes[0], sizes[1]).count
      : tripleCount(sizes as [SizeName, SizeName, SizeName]);
    if (valid === 0) return -Infinity;
    return Math.log1p(-((1 - valid / all) ** PLACEMENT_ATTEMPTS)) - Math.log(valid);
  };
  const grids = {} as Record<SizeName, CentreGrid>;
  for (const s of SIZES) {
    const radius = geometry.radius[s];
    grids[s] = { centres: centres[s], radius, span: size - 2 * radius + 1 };
  }
  /** layouts of three sizes whose boxes are apart and whose first two stand in a clear relation */
  const tripleCounts = new Map<string, number>();
  const tripleCount = ([a, b, c]: [SizeName, SizeName, SizeName]) => {
    const key = `${a} ${b} ${c}`;
    let count = tripleCounts.get(key);
    if (count === undefined) {
      const { matrix } = constraint(a, b), third = grids[c], n2 = centres[b].length;
      const firsts = clashRects(grids[a], third, geometry.margin);
      const seconds = clashRects(grids[b], third, geometry.margin);
      count = 0;
      for (let i = 0; i < centres[a].length; i++) {
        const first = firsts[i];
        for (let j = 0; j < n2; j++) {
          if (!matrix[i * n2 + j]) continue;
          const second = seconds[j];
          count += third.centres.length - area(first) - area(second) +
            area(intersect(first, second));
        }
      }
      tripleCounts.set(key, count);
    }
    return count;
  };
  const channels = new Map(
    COLOURS.map((colour) => [colour, [0, 1, 2].filter((c) => COLOUR_RGB[colour][c] === 255)]),
  );
  const onChannels = (colour: ColourName) => channels.get(colour)!;

  const assignments = (condition: WorldCondition): Assignment[] => {
    const options = condition.objects.map((slot) =>
      (slot.colour ? [slot.colour] : COLOURS).flatMap((colour) =>
        (slot.shape ? [slot.shape] : SHAPES).flatMap((shape) =>
          (slot.size ? [slot.size] : SIZES).map((s) => ({ colour, shape, size: s }))
        )
      )
    );
    const distinct = (a: AttributeSet, b: AttributeSet) =>
      a.colour !== b.colour && a.shape !== b.shape;
    const joint = options.length === 1
      ? options[0].map((o) => [o])
      : options[0].flatMap((a) =>
        options[1].filter((b) => distinct(a, b)).flatMap((b) =>
          options.length === 2
            ? [[a, b]]
            : options[2].filter((c) => distinct(a, c) && distinct(b, c)).map((c) => [a, b, c])
        )
      );
    const logs = joint.map((objects) => logAttributePrior(objects.map((o) => o.size)));
    const feasible = joint.flatMap((_, i) => logs[i] > -Infinity ? [i] : []);
    const norm = logSumExp(feasible.map((i) => logs[i]));
    return feasible.map((i) => ({ objects: joint[i], logPrior: logs[i] - norm }));
  };

  const conditions = new Map<string, { condition: WorldCondition; assignments: Assignment[] }>();
  const encoded = (prompt: string) => {
    let found = conditions.get(prompt);
    if (!found) {
      const condition = parseWorldPrompt(prompt);
      const list = assignments(condition);
      if (list.length === 0) {
        throw new PromptError(`no layout of the shapes world fits "${prompt}"`);
      }
      conditions.set(prompt, found = { condition, assignments: list });
    }
    return found;
  };

  /** E[μ | z] − black, written into `painted` (CHW); returns nothing. */
  function posteriorPaint(
    z: Float32Array,
    s: number,
    tau: number,
    entry: { condition: WorldCondition; assignments: Assignment[] },
    painted: Float64Array,
  ): void {
    const k = 2 * Math.sqrt(s) / tau;
    // each colour's channels of z summed, per pixel
    const channelSums = new Map<ColourName, Float64Array>();
    const sums = (colour: ColourName) => {
      let y = channelSums.get(colour);
      if (!y) {
        y = new Float64Array(plane);
        for (const c of onChannels(colour)) {
          for (let p = 0; p < plane; p++) y[p] += z[c * plane + p];
        }
        channelSums.set(colour, y);
      }
      return y;
    };
    // per (colour, shape, size): an object's log-likelihood term at every centre
    const terms = new Map<string, Float64Array>();
    const term = (o: AttributeSet) => {
      const key = attributeKey(o);
      let l = terms.get(key);
      if (!l) {
        const y = sums(o.colour), list = masks.get(`${o.shape} ${o.size}`)!;
        l = new Float64Array(list.length);
        for (let p = 0; p < list.length; p++) {
          let sum = 0;
          for (const pixel of list[p]) sum += y[pixel];
          l[p] = k * sum;
        }
        terms.set(key, l);
      }
      return l;
    };
    const masses = entry.assignments.map((a) => {
      const ls = a.objects.map(term);
      if (ls.length === 1) return singleMass(ls[0]);
      const allowed =
        constraint(a.objects[0].size, a.objects[1].size, entry.condition.relation).matrix;
      if (ls.length === 2) return pairMass(ls[0], ls[1], allowed);
      return tripleMass(
        ls as [Float64Array, Float64Array, Float64Array],
        a.objects.map((o) => grids[o.size]) as [CentreGrid, CentreGrid, CentreGrid],
        allowed,
        geometry.margin,
      );
    });
    const logMass = masses.map((m, i) => entry.assignments[i].logPrior + m.logMass);
    const norm = logSumExp(logMass);
    // accumulate each (colour, shape, size)'s weight per centre over assignments, then paint
    const byObject = new Map<string, { object: AttributeSet; weights: Float64Array }>();
    entry.assignments.forEach((a, i) => {
      const share = Math.exp(logMass[i] - norm);
      if (share === 0) return;
      a.objects.forEach((object, j) => {
        const weights = masses[i].weights[j], key = attributeKey(object);
        let found = byObject.get(key);
        if (!found) {
          byObject.set(key, found = { object, weights: new Float64Array(weights.length) });
        }
        for (let p = 0; p < weights.length; p++) found.weights[p] += share * weights[p];
      });
    });
    painted.fill(0);
    for (const { object, weights: w } of byObject.values()) {
      const list = masks.get(`${object.shape} ${object.size}`)!,
        channels = onChannels(object.colour);
      for (let p = 0; p < w.length; p++) {
        if (w[p] < 1e-300) continue;
        const amount = 2 * w[p];
        for (const pixel of list[p]) for (const c of channels) painted[c * plane + pixel] += amount;
      }
    }
  }

  const picture = (objects: readonly PaintedObject[]) =>
    hwcToChw(paintObjects(size, objects).rgb, size);

  const shape = [3, size, size] as const;
  const painted = new Float64Array(d);
  return {
    name: `exact shapes world (${size} px)`,
    shape,
    batchSize: 16,
    sharedLogSnr: false,
    centres,
    picture,
    allowed,
    assignments,
    encode: (prompt: string) => new Promise((resolve) => resolve(encoded(prompt).condition)),
    predictNoise(batch: NoiseBatch): Promise<Float32Array> {
      const items = batch.logSnr.length, out = new Float32Array(items * d);
      for (let item = 0; item < items; item++) {
        const s = sigmoid(batch.logSnr[item]), tau = s * variance + 1 - s;
        const z = batch.noisy.subarray(item * d, (item + 1) * d);
        posteriorPaint(z, s, tau, encoded(batch.conditions[item].prompt), painted);
        // ε̂ = √(1−s)/τ · (z − √s·E[μ | z]), E[μ | z] = black + painted
        const scale = Math.sqrt(1 - s) / tau, root = Math.sqrt(s);
        for (let j = 0; j < d; j++) {
          out[item * d + j] = scale * (z[j] - root * (painted[j] - 1));
        }
      }
      return Promise.resolve(out);
    },
    prepare(image: ImageInput): Promise<Float32Array> {
      const array = imageArray(image)?.array ?? (image as Float32Array);
      return Promise.resolve(checkModelData(shape, array, "exact shapes world image"));
    },
    identity: () =>
      Promise.resolve({
        name: `exact shapes world (${size} px)`,
        backend: "exact shapes world",
        sha256: createHash("sha256").update(`exact shapes world ${size} ${variance}`).digest("hex"),
      }),
    dispose: () => Promise.resolve(),
  };
}

const maximum = (values: Float64Array) => values.reduce((m, v) => Math.max(m, v), -Infinity);

/** log Σ_p exp(l_p) and the normalised weights of one object's placements. */
function singleMass(l: Float64Array): { logMass: number; weights: Float64Array[] } {
  const m = maximum(l), e = l.map((v) => Math.exp(v - m)), mass = e.reduce((t, v) => t + v, 0);
  return { logMass: m + Math.log(mass), weights: [e.map((v) => v / mass)] };
}

/**
 * log Σ over allowed pairs of exp(l1_i + l2_j), and each object's marginal weights. Fast: each
 * term shifted by its own maximum, two matrix–vector products. When that underflows (at low noise
 * the two unconstrained maxima can be a disallowed pair, every allowed pair then below e^−745),
 * again with every pair shifted by the largest allowed pair.
 */
export function pairMass(
  l1: Float64Array,
  l2: Float64Array,
  matrix: Uint8Array,
): { logMass: number; weights: Float64Array[] } {
  const n1 = l1.length, n2 = l2.length, m1 = maximum(l1), m2 = maximum(l2);
  const e1 = l1.map((v) => Math.exp(v - m1)), e2 = l2.map((v) => Math.exp(v - m2));
  let w1 = new Float64Array(n1), w2 = new Float64Array(n2), mass = 0, shift = m1 + m2;
  for (let i = 0; i < n1; i++) {
    const row = i * n2, ei = e1[i];
    let acc = 0;
    for (let j = 0; j < n2; j++) if (matrix[row + j]) (acc += e2[j]), (w2[j] += ei);
    w1[i] = ei * acc;
    mass += w1[i];
  }
  for (let j = 0; j < n2; j++) w2[j] *= e2[j];
  if (!(mass > 1e-250)) {
    shift = -Infinity;
    for (let i = 0; i < n1; i++) {
      for (let j = 0; j < n2; j++) if (matrix[i * n2 + j]) shift = Math.max(shift, l1[i] + l2[j]);
    }
    (w1 = new Float64Array(n1)), (w2 = new Float64Array(n2)), (mass = 0);
    for (let i = 0; i < n1; i++) {
      for (let j = 0; j < n2; j++) {
        if (!matrix[i * n2 + j]) continue;
        const v = Math.exp(l1[i] + l2[j] - shift);
        (w1[i] += v), (w2[j] += v), (mass += v);
      }
    }
  }
  return {
    logMass: shift + Math.log(mass),
    weights: [w1.map((v) => v / mass), w2.map((v) => v / mass)],
  };
}

/** The centres an object of one size can have: a span × span grid, row by row, from its radius. */
export interface CentreGrid {
  readonly centres: readonly CentredBox[];
  readonly radius: number;
  readonly span: number;
}

/** A rectangle of grid cells, bounds inclusive; empty when x0 > x1 or y0 > y1. */
interface Rect {
  readonly x0: number;
  readonly x1: number;
  readonly y0: number;
  readonly y1: number;
}

/** The cells of `grid` whose box is not apart from `box` (`boxesApart`'s complement): a rectangle. */
function clashRect(box: CentredBox, grid: CentreGrid, margin: number): Rect {
  const reach = box.radius + grid.radius + margin, last = grid.span - 1;
  return {
    x0: Math.max(0, box.cx - reach + 1 - grid.radius),
    x1: Math.min(last, box.cx + reach - 1 - grid.radius),
    y0: Math.max(0, box.cy - reach + 1 - grid.radius),
    y1: Math.min(last, box.cy + reach - 1 - grid.radius),
  };
}

/** Each centre of `from`'s grid with {@link clashRect} in `to`'s: geometry alone, computed once. */
const clashCache = new WeakMap<CentreGrid, Map<CentreGrid, Map<number, readonly Rect[]>>>();
function clashRects(from: CentreGrid, to: CentreGrid, margin: number): readonly Rect[] {
  let byGrid = clashCache.get(from);
  if (!byGrid) clashCache.set(from, byGrid = new Map());
  let byMargin = byGrid.get(to);
  if (!byMargin) byGrid.set(to, byMargin = new Map());
  let rects = byMargin.get(margin);
  if (!rects) byMargin.set(margin, rects = from.centres.map((c) => clashRect(c, to, margin)));
  return rects;
}

const intersect = (a: Rect, b: Rect): Rect => ({
  x0: Math.max(a.x0, b.x0),
  x1: Math.min(a.x1, b.x1),
  y0: Math.max(a.y0, b.y0),
  y1: Math.min(a.y1, b.y1),
});
const area = (r: Rect) => Math.max(0, r.x1 - r.x0 + 1) * Math.max(0, r.y1 - r.y0 + 1);
const inside = (r: Rect, cell: number, span: number) => {
  const x = cell % span, y = (cell - x) / span;
  return x >= r.x0 && x <= r.x1 && y >= r.y0 && y <= r.y1;
};
/** Σ of a grid's values over the cells outside every rectangle, term by term (no cancellation). */
function sumOutside(values: ArrayLike<number>, span: number, rects: readonly Rect[]): number {
  let sum = 0;
  for (let k = 0; k < values.length; k++) {
    if (!rects.some((r) => inside(r, k, span))) sum += values[k];
  }
  return sum;
}

/** Sums of a grid's values over rectangles, in constant time (a summed-area table). */
class SummedArea {
  readonly #table: Float64Array;
  readonly #width: number;
  constructor(span: number) {
    this.#width = span + 1;
    this.#table = new Float64Array(this.#width * this.#width);
  }
  /** the table of `values` (span × span, row by row), over whatever it held */
  fill(values: ArrayLike<number>): this {
    const w = this.#width, span = w - 1, table = this.#table;
    for (let y = 0; y < span; y++) {
      let row = 0;
      for (let x = 0; x < span; x++) {
        row += values[y * span + x];
        table[(y + 1) * w + x + 1] = table[y * w + x + 1] + row;
      }
    }
    return this;
  }
  get total(): number {
    return this.#table[this.#table.length - 1];
  }
  sum(r: Rect): number {
    if (r.x0 > r.x1 || r.y0 > r.y1) return 0;
    const t = this.#table, w = this.#width;
    return t[(r.y1 + 1) * w + r.x1 + 1] - t[r.y0 * w + r.x1 + 1] - t[(r.y1 + 1) * w + r.x0] +
      t[r.y0 * w + r.x0];
  }
}

/**
 * A rectangle sum subtracted from a total loses the digits the two share: below this share of the
 * total the difference is summed term by term instead (a summed-area sum is exact to about 10⁻¹⁵
 * of the total, so what is kept is exact to 10⁻⁶ or better).
 */
const CANCELLATION = 1e-9;

/**
 * A share of the mass below which a term is left out of {@link tripleMass}'s sums: each left out
 * is below it times the mass summed so far, and there are at most 4·10⁵ of them (625²), so
 * together at most 4·10⁻⁸ of the mass.
 */
const NEGLIGIBLE = 1e-13;

/**
 * log Σ over allowed triples of exp(l1_i + l2_j + l3_k), and each object's marginal weights. A
 * triple is allowed when the first two are allowed together (`allowed12`, [i × j]: boxes apart and
 * the relation) and the third's box is apart from both. Fast path: each object's terms shifted by
 * its own maximum; for each allowed pair (i, j) the third's mass outside the two rectangles that
 * clash with i and j (inclusion–exclusion of summed-area sums) gives the first two marginals, and
 * for each first position i, a summed-area table of the second's allowed mass gives the third's
 * marginal over the pairs (i, k) the same way. Where a subtraction would cancel, that sum is taken
 * term by term; the two ways of summing the total must agree. Where every allowed triple
 * underflows (low noise, the best places clash), again in log space, shifted by the best allowed
 * triple and skipping triples below it by more than float64's range.
 */
export function tripleMass(
  ls: readonly [Float64Array, Float64Array, Float64Array],
  grids: readonly [CentreGrid, CentreGrid, CentreGrid],
  allowed12: Uint8Array,
  margin: number,
): { logMass: number; weights: Float64Array[] } {
  const [l1, l2, l3] = ls, [g1, g2, g3] = grids;
  const n1 = l1.length, n2 = l2.length, n3 = l3.length;
  const shifts = ls.map(maximum), shift = shifts[0] + shifts[1] + shifts[2];
  const [e1, e2, e3] = ls.map((l, i) => l.map((v) => Math.exp(v - shifts[i])));
  const w1 = new Float64Array(n1), w2 = new Float64Array(n2), w3 = new Float64Array(n3);
  // the first two objects' marginals: the third's mass apart from each allowed pair
  const third = new SummedArea(g3.span).fill(e3), all3 = third.total;
  const clash1in3 = clashRects(g1, g3, margin), clash2in3 = clashRects(g2, g3, margin);
  let mass = 0;
  const add = (i: number, j: number, rest: number) => {
    const t = e1[i] * e2[j] * rest;
    w1[i] += t;
    w2[j] += t;
    mass += t;
  };
  // pairs whose rest would cancel, summed term by term afterwards unless they cannot matter
  const cancelled: number[] = [];
  for (let i = 0; i < n1; i++) {
    if (e1[i] === 0) continue;
    const r1 = clash1in3[i], row = i * n2;
    for (let j = 0; j < n2; j++) {
      if (!allowed12[row + j] || e2[j] === 0) continue;
      const r2 = clash2in3[j], both = intersect(r1, r2);
      // no place left for the third: nothing to add (and nothing to sum term by term)
      if (n3 - area(r1) - area(r2) + area(both) === 0) continue;
      const rest = all3 - third.sum(r1) - third.sum(r2) + third.sum(both);
      if (rest > CANCELLATION * all3) add(i, j, rest);
      else cancelled.push(i, j);
    }
  }
  // a cancelled pair adds at most e1·e2·(CANCELLATION·all3 + rounding): below NEGLIGIBLE of the
  // mass summed so far (a lower bound of the whole), it is left out
  for (let c = 0; c < cancelled.length; c += 2) {
    const i = cancelled[c], j = cancelled[c + 1];
    if (e1[i] * e2[j] * 2 * CANCELLATION * all3 < NEGLIGIBLE * mass) continue;
    add(i, j, sumOutside(e3, g3.span, [clash1in3[i], clash2in3[j]]));
  }
  if (!(mass > 1e-250)) return tripleMassInLogSpace(ls, grids, allowed12, margin);
  // the third's marginal: for each first position, the second's allowed mass apart from the third
  const clash3in2 = clashRects(g3, g2, margin);
  const row2 = new Float64Array(n2), second = new SummedArea(g2.span);
  let again = 0;
  for (let i = 0; i < n1; i++) {
    if (e1[i] === 0) continue;
    for (let j = 0; j < n2; j++) row2[j] = allowed12[i * n2 + j] ? e2[j] : 0;
    const all2 = second.fill(row2).total;
    if (all2 === 0) continue;
    const r1 = clash1in3[i];
    for (let k = 0; k < n3; k++) {
      if (e3[k] === 0 || inside(r1, k, g3.span)) continue;
      const r3 = clash3in2[k];
      let rest = all2 - second.sum(r3);
      if (!(rest > CANCELLATION * all2)) {
        // as above, against the mass the first two marginals found
        if (e1[i] * e3[k] * 2 * CANCELLATION * all2 < NEGLIGIBLE * mass) continue;
        rest = sumOutside(row2, g2.span, [r3]);
      }
      const t = e1[i] * e3[k] * rest;
      w3[k] += t;
      again += t;
    }
  }
  if (!(Math.abs(again - mass) <= 1e-6 * mass)) {
    throw new Error(`the triple sums disagree: ${mass} against ${again}`);
  }
  return {
    logMass: shift + Math.log(mass),
    weights: [w1, w2, w3].map((w) => w.map((v) => v / mass)),
  };
}

/** {@link tripleMass} in log space, shifted by the best allowed triple (for underflow). */
function tripleMassInLogSpace(
  ls: readonly [Float64Array, Float64Array, Float64Array],
  grids: readonly [CentreGrid, CentreGrid, CentreGrid],
  allowed12: Uint8Array,
  margin: number,
): { logMass: number; weights: Float64Array[] } {
  const [l1, l2, l3] = ls, [g1, g2, g3] = grids, n2 = l2.length;
  // the third's positions best first: the best one apart from a pair is found in a few steps
  const order = Array.from(l3.keys()).sort((a, b) => l3[b] - l3[a]);
  const clash1 = clashRects(g1, g3, margin), clash2 = clashRects(g2, g3, margin);
  const apart = (i: number, j: number, k: number) =>
    !inside(clash1[i], k, g3.span) && !inside(clash2[j], k, g3.span);
  const bestThird = (i: number, j: number) => {
    for (const k of order) if (apart(i, j, k)) return l3[k];
    return -Infinity;
  };
  let shift = -Infinity;
  for (let i = 0; i < l1.length; i++) {
    for (let j = 0; j < n2; j++) {
      if (allowed12[i * n2 + j]) shift = Math.max(shift, l1[i] + l2[j] + bestThird(i, j));
    }
  }
  if (shift === -Infinity) throw new Error("no allowed triple of placements");
  const range = 745; // exp(−745) is float64's smallest
  const w = ls.map((l) => new Float64Array(l.length));
  let mass = 0;
  for (let i = 0; i < l1.length; i++) {
    for (let j = 0; j < n2; j++) {
      const pair = l1[i] + l2[j];
      if (!allowed12[i * n2 + j] || pair + l3[order[0]] < shift - range) continue;
      for (const k of order) {
        if (pair + l3[k] < shift - range) break;
        if (!apart(i, j, k)) continue;
        const v = Math.exp(pair + l3[k] - shift);
        w[0][i] += v;
        w[1][j] += v;
        w[2][k] += v;
        mass += v;
      }
    }
  }
  return { logMass: shift + Math.log(mass), weights: w.map((x) => x.map((v) => v / mass)) };
}
