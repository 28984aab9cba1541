/**
 * The exact shapes world of tools/exact_shapes_world.ts (the ceiling of issue 28's binding
 * measure): its factorised posterior against sums over every explicit picture, its prior against
 * the world's own generator, and its pictures against the world's.
 */
import assert from "node:assert/strict";
import { exactShapesWorld, pairMass, parseWorldPrompt } from "../tools/exact_shapes_world.ts";
import { mixtureModel } from "../src/query/oracles.ts";
import {
  boxesApart,
  relationBetween,
  shapesGeometry,
  type ShapesScene,
  shapesWorld,
} from "../src/datasets/shapes/world.ts";
import {
  type ColourName,
  COLOURS,
  SHAPES,
  type SizeName,
  SIZES,
} from "../src/datasets/shapes/caption.ts";
import type { ShapeName } from "../src/datasets/shapes/draw.ts";
import { Random } from "../src/numerics/random.ts";
import { sigmoid } from "../src/numerics/log-snr.ts";
import { logSumExp } from "../src/models/mixture.ts";
import { conditionalPlan } from "../src/estimators/conditional-information.ts";
import type { Denoiser } from "../src/models/denoiser.ts";

const SIZE = 16, VARIANCE = 1e-3;

/** x_α = √s·x + √(1−s)·ε for a fixed seed. */
function noisy(x: Float32Array, logSnr: number, seed: number): Float32Array {
  const s = sigmoid(logSnr), random = new Random(seed);
  return x.map((v) => Math.sqrt(s) * v + Math.sqrt(1 - s) * random.gaussian());
}

async function predict(model: Denoiser, z: Float32Array, logSnr: number, prompt: string) {
  const condition = await model.encode(prompt);
  return model.predictNoise({
    noisy: z,
    logSnr: Float64Array.of(logSnr),
    conditions: [condition],
  });
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string) {
  let worst = 0, scale = 0;
  for (let j = 0; j < actual.length; j++) {
    worst = Math.max(worst, Math.abs(actual[j] - expected[j]));
    scale = Math.max(scale, Math.abs(expected[j]));
  }
  assert.ok(worst <= 1e-4 * scale, `${what}: largest difference ${worst} of ${scale}`);
}

Deno.test("the exact world's one-object posterior equals the explicit mixture of every picture", async () => {
  const exact = exactShapesWorld(SIZE, VARIANCE);
  const components = [];
  for (const colour of COLOURS) {
    for (const shape of SHAPES) {
      for (const size of SIZES) {
        for (const box of exact.centres[size]) {
          components.push({
            words: ["a", colour, shape, size],
            mean: exact.picture([{ colour, shape, ...box }]),
            variance: VARIANCE,
            weight: 1 / exact.centres[size].length,
          });
        }
      }
    }
  }
  const mixture = mixtureModel({ shape: [3, SIZE, SIZE], components });
  const scene = shapesWorld({ seed: 4, size: SIZE, count: 40, maxObjects: 1 }).scenes[3];
  const prompts = ["a red circle", "a circle", "a small red circle", "a red", "a large"];
  for (const [logSnr, seed] of [[-4, 1], [0, 2], [3, 3]]) {
    const z = noisy(scene.toData(), logSnr, seed);
    for (const prompt of [scene.caption, ...prompts]) {
      assertClose(
        await predict(exact, z, logSnr, prompt),
        await predict(mixture, z, logSnr, prompt),
        `"${prompt}" at α ${logSnr}`,
      );
    }
  }
});

type Attributes = { colour: ColourName; shape: ShapeName; size: SizeName };

/**
 * Every layout of two or three objects a prompt allows, by explicit enumeration: per attribute
 * assignment its prior per layout (kept when one of 5,000 tries is valid, then uniform over the
 * valid layouts) and its layouts as tuples of centre indices.
 */
function explicitLayouts(prompt: string) {
  const exact = exactShapesWorld(SIZE, VARIANCE), margin = shapesGeometry(SIZE).margin;
  const { objects: slots, relation } = parseWorldPrompt(prompt);
  const apart = (a: SizeName, b: SizeName, i: number, j: number) =>
    boxesApart(exact.centres[a][i], exact.centres[b][j], margin);
  /** every placement the generator allows (any clear relation, or the named one), as indices */
  const layouts = (objects: readonly Attributes[], named?: string) => {
    const [a, b, c] = objects.map((o) => o.size), found: number[] = [];
    for (let i = 0; i < exact.centres[a].length; i++) {
      for (let j = 0; j < exact.centres[b].length; j++) {
        if (!apart(a, b, i, j)) continue;
        const clear = relationBetween(exact.centres[a][i], exact.centres[b][j], margin);
        if (!clear || (named !== undefined && clear !== named)) continue;
        if (!c) found.push(i, j);
        else {
          for (let k = 0; k < exact.centres[c].length; k++) {
            if (apart(a, c, i, k) && apart(b, c, j, k)) found.push(i, j, k);
          }
        }
      }
    }
    return Int32Array.from(found);
  };
  const options = (slot: (typeof slots)[number]) =>
    COLOURS.filter((c) => !slot.colour || c === slot.colour).flatMap((colour) =>
      SHAPES.filter((h) => !slot.shape || h === slot.shape).flatMap((shape) =>
        SIZES.filter((s) => !slot.size || s === slot.size).map((size) => ({ colour, shape, size }))
      )
    );
  const assignments = slots.reduce<Attributes[][]>(
    (partial, slot) =>
      partial.flatMap((objects) =>
        options(slot).filter((o) =>
          objects.every((p) => p.colour !== o.colour && p.shape !== o.shape)
        ).map((o) => [...objects, o])
      ),
    [[]],
  );
  const counts = new Map<string, number>();
  return assignments.flatMap((objects) => {
    const key = objects.map((o) => o.size).join(" ");
    if (!counts.has(key)) counts.set(key, layouts(objects).length / objects.length);
    const valid = counts.get(key)!;
    if (valid === 0) return [];
    const all = objects.reduce((t, o) => t * exact.centres[o.size].length, 1);
    const logPrior = Math.log(1 - (1 - valid / all) ** 5000) - Math.log(valid);
    return [{ objects, logPrior, layouts: layouts(objects, relation) }];
  });
}

/**
 * E[ε | z] by a sum over every layout of {@link explicitLayouts}. A layout's picture is the black
 * picture with each object's own one-object picture painted in (its masks never overlap the
 * others', which the test checks on the world's painter), so its log-likelihood is the black
 * picture's plus each object's difference from black, and its mean the black picture plus each
 * object's posterior-weighted difference.
 */
function bruteForce(
  table: ReturnType<typeof explicitLayouts>,
  z: Float32Array,
  logSnr: number,
): Float32Array {
  const exact = exactShapesWorld(SIZE, VARIANCE);
  const s = sigmoid(logSnr), tau = s * VARIANCE + 1 - s, root = Math.sqrt(s);
  const black = exact.picture([]);
  const squares = (mu: Float32Array) => mu.reduce((t, v, j) => t + (z[j] - root * v) ** 2, 0);
  const base = squares(black);
  /** each placement's one-object picture and its log-likelihood relative to black */
  const singles = (o: Attributes) =>
    exact.centres[o.size].map((box) => {
      const mu = exact.picture([{ ...o, ...box }]);
      return { mu, term: -(squares(mu) - base) / (2 * tau) };
    });
  const evaluated = table.map((a) => {
    const n = a.objects.length, pictures = a.objects.map(singles);
    const logs = new Float64Array(a.layouts.length / n);
    for (let l = 0; l < logs.length; l++) {
      logs[l] = a.logPrior;
      for (let i = 0; i < n; i++) logs[l] += pictures[i][a.layouts[l * n + i]].term;
    }
    return { ...a, n, pictures, logs };
  });
  const norm = logSumExp(evaluated.flatMap((a) => [...a.logs]));
  const mean = Float64Array.from(black);
  for (const a of evaluated) {
    const weights = a.pictures.map((p) => new Float64Array(p.length));
    a.logs.forEach((log, l) => {
      const w = Math.exp(log - norm);
      for (let i = 0; i < a.n; i++) weights[i][a.layouts[l * a.n + i]] += w;
    });
    weights.forEach((w, i) =>
      w.forEach((v, p) => {
        if (v === 0) return;
        const mu = a.pictures[i][p].mu;
        for (let j = 0; j < mu.length; j++) mean[j] += v * (mu[j] - black[j]);
      })
    );
  }
  return z.map((v, j) => Math.sqrt(1 - s) / tau * (v - root * mean[j]));
}

/**
 * The exact world's predictions for `prompts` at a scene's noisy pixels (α −3: every layout
 * counts; 1: the posterior narrows; 6: about one layout, where sums underflow) against
 * {@link bruteForce}, after checking its premise on the world's painter: a layout's picture is the
 * black picture with each object's own picture painted in.
 */
async function assertMatchesExplicitLayouts(scene: ShapesScene, prompts: readonly string[]) {
  const exact = exactShapesWorld(SIZE, VARIANCE);
  const tables = new Map(prompts.map((p) => [p, explicitLayouts(p)]));
  const black = exact.picture([]), [{ objects, layouts }] = tables.get(scene.caption)!;
  const n = objects.length;
  for (let l = 0; l < layouts.length; l += n * 997) {
    const placed = objects.map((o, i) => ({ ...o, ...exact.centres[o.size][layouts[l + i]] }));
    const whole = exact.picture(placed), parts = placed.map((o) => exact.picture([o]));
    whole.forEach((v, j) =>
      assert.equal(v, black[j] + parts.reduce((t, p) => t + p[j] - black[j], 0))
    );
  }
  for (const [logSnr, seed] of [[-3, 5], [1, 6], [6, 7]]) {
    const z = noisy(scene.toData(), logSnr, seed);
    for (const prompt of prompts) {
      assertClose(
        await predict(exact, z, logSnr, prompt),
        bruteForce(tables.get(prompt)!, z, logSnr),
        `"${prompt}" at α ${logSnr}`,
      );
    }
  }
}

Deno.test("the exact world's two-object posterior equals the sum over every explicit layout", async () => {
  const scene = shapesWorld({ seed: 2, size: SIZE, count: 60, minObjects: 2, maxObjects: 2 })
    .scenes.find((s) => s.objects.every((o) => o.sizeNamed))!;
  const [a, b] = scene.objects;
  await assertMatchesExplicitLayouts(scene, [
    scene.caption,
    conditionalPlan(scene.caption, a.colour).prompts[1],
    conditionalPlan(scene.caption, b.shape).prompts[1],
    conditionalPlan(scene.caption, a.size).prompts[1],
    conditionalPlan(scene.caption, scene.relation!.split(" ")[0]).prompts[1],
  ]);
});

Deno.test("the exact world's three-object posterior equals the sum over every explicit layout", async () => {
  const scene = shapesWorld({ seed: 3, size: SIZE, count: 400, minObjects: 3, maxObjects: 3 })
    .scenes.find((s) => s.objects.every((o) => o.sizeNamed && o.size === "small"))!;
  const [a, b, c] = scene.objects;
  await assertMatchesExplicitLayouts(scene, [
    scene.caption,
    conditionalPlan(scene.caption, a.colour).prompts[1],
    conditionalPlan(scene.caption, c.colour).prompts[1],
    conditionalPlan(scene.caption, b.shape).prompts[1],
    conditionalPlan(scene.caption, scene.relation!.split(" ")[0]).prompts[1],
  ]);
});

Deno.test("the exact world's prior over three objects' sizes counts the layouts the generator allows", () => {
  // sizes left open: eight assignments whose priors differ by their numbers of valid layouts
  const prompt = "a red circle left of a green triangle and a blue square";
  const exact = exactShapesWorld(SIZE, VARIANCE);
  const ours = exact.assignments(parseWorldPrompt(prompt));
  const theirs = explicitLayouts(prompt);
  const key = (objects: readonly Attributes[]) => objects.map((o) => o.size).join(" ");
  assert.equal(ours.length, theirs.length);
  assert.ok(theirs.length >= 4, `${theirs.length} size assignments with valid layouts`);
  const first = theirs[0].logPrior - ours.find((a) => key(a.objects) === key(theirs[0].objects))!
    .logPrior;
  for (const t of theirs) {
    const o = ours.find((a) => key(a.objects) === key(t.objects))!;
    assert.ok(Math.abs(t.logPrior - o.logPrior - first) < 1e-9, key(t.objects));
  }
});

Deno.test("every scene of the world is a layout of the exact world, painted the same", () => {
  for (const size of [16, 32]) {
    const exact = exactShapesWorld(size);
    const scenes = shapesWorld({ seed: 7, size, count: 200, maxObjects: 3 }).scenes;
    assert.ok(scenes.some((s) => s.objects.length === 3));
    for (const scene of scenes) {
      const condition = parseWorldPrompt(scene.caption);
      assert.deepEqual(
        condition.objects,
        scene.objects.map((o) => ({
          colour: o.colour,
          shape: o.shape,
          ...(o.sizeNamed ? { size: o.size } : {}),
        })),
      );
      assert.equal(condition.relation, scene.relation);
      assert.deepEqual(exact.picture(scene.objects), scene.toData(), scene.caption);
      if (scene.objects.length >= 2) {
        assert.ok(exact.allowed(scene.objects[0], scene.objects[1], scene.relation));
      }
      if (scene.objects.length === 3) {
        const [a, b, c] = scene.objects, { margin } = shapesGeometry(size);
        assert.ok(boxesApart(a, c, margin) && boxesApart(b, c, margin));
      }
    }
  }
});

Deno.test("the exact world's prior over sizes is the generator's: 1 / N_valid per layout", () => {
  // the world draws sizes at ½ each and places objects uniformly among the valid layouts, so given
  // the relation the sizes have probability ∝ N_relation(sizes) / N_valid(sizes), not N_relation
  const exact = exactShapesWorld(32);
  const scenes = shapesWorld({ seed: 11, count: 6000, minObjects: 2, maxObjects: 2 })
    .scenes.filter((s) => s.relation === "left of");
  const prior = exact.assignments(parseWorldPrompt("a red circle left of a blue square"));
  const combos = prior.map((a) => [a.objects[0].size, a.objects[1].size] as const);
  assert.equal(combos.length, 4);
  const leftOf = combos.map(([x, y]) => {
    let n = 0;
    for (const p of exact.centres[x]) {
      for (const q of exact.centres[y]) if (exact.allowed(p, q, "left of")) n++;
    }
    return n;
  });
  const chiSquare = (weights: number[]) => {
    const total = weights.reduce((t, w) => t + w, 0);
    return combos.reduce((chi, [x, y], i) => {
      const mean = weights[i] / total * scenes.length;
      const observed = scenes.filter((s) => s.objects[0].size === x && s.objects[1].size === y);
      return chi + (observed.length - mean) ** 2 / mean;
    }, 0);
  };
  // χ² with 3 degrees of freedom: 16.3 is its 0.1 % point
  const chi = chiSquare(prior.map((a, i) => Math.exp(a.logPrior) * leftOf[i]));
  assert.ok(chi < 16.3, `χ² ${chi.toFixed(1)} over ${scenes.length} scenes`);
  // weighting every layout alike instead is far off (two large objects have fewer valid layouts)
  const alike = chiSquare(leftOf);
  assert.ok(alike > 100, `χ² of equal layout weights ${alike.toFixed(1)}`);
});

Deno.test("pair sums stay finite when the two objects' best placements are not allowed together", () => {
  // at low noise each object's log-likelihood is sharp: here the best places (0, 0) clash, and
  // every allowed pair lies e^−1000 below them, beneath float64's range after separate shifts
  const l1 = Float64Array.of(0, -1000, -1001), l2 = Float64Array.of(0, -1000, -1002);
  const matrix = Uint8Array.of(0, 1, 1, 1, 0, 1, 1, 1, 0); // [i × j]: the diagonal is disallowed
  const { logMass, weights } = pairMass(l1, l2, matrix);
  const pairs = [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]].map(([i, j]) => l1[i] + l2[j]);
  assert.ok(Math.abs(logMass - logSumExp(pairs)) < 1e-9, `${logMass}`);
  const p01 = Math.exp(pairs[0] - logMass);
  assert.ok(Math.abs(weights[0][0] - (p01 + Math.exp(pairs[1] - logMass))) < 1e-12);
  assert.ok(Math.abs(weights[1][1] - (p01 + Math.exp(pairs[5] - logMass))) < 1e-12);
  for (const w of weights) assert.ok(Math.abs(w.reduce((t, v) => t + v, 0) - 1) < 1e-12);
});

Deno.test("the exact world refuses what it cannot read", async () => {
  const exact = exactShapesWorld(SIZE);
  const refusals = {
    "": /captions of one to three objects; "" has 0 objects/,
    "a red circle left of a blue square and a green triangle and a yellow circle":
      /cannot read "and"/,
    "a red dog": /cannot read "dog"/,
    "a red blue circle": /cannot read "blue"/,
  };
  for (const [prompt, message] of Object.entries(refusals)) {
    await assert.rejects(exact.encode(prompt), message);
  }
  assert.deepEqual(parseWorldPrompt("a circle above a blue square").objects, [
    { shape: "circle" },
    { colour: "blue", shape: "square" },
  ]);
});
