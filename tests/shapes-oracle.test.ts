import assert from "node:assert/strict";
import { SHAPES_ORACLE_VARIANCE } from "../src/models/shapes-oracle.ts";
import { shapesOracle } from "../src/query/oracles.ts";
import { type ShapesScene, shapesWorld } from "../src/datasets/shapes/world.ts";
import { removeWord } from "../src/text/prompt.ts";
import { PromptError } from "../src/errors.ts";

const world = shapesWorld({ seed: 21, count: 300 });
const oracle = shapesOracle(world);
const N = world.scenes.length;

/** Indices of the scenes a predicate selects. */
const where = (f: (s: ShapesScene) => boolean) => world.scenes.flatMap((s, k) => (f(s) ? [k] : []));
const has = (s: ShapesScene, colour: string, shape: string) =>
  s.objects.some((o) => o.colour === colour && o.shape === shape);

Deno.test("a prompt selects exactly the scenes whose caption contains it, attributes bound", () => {
  const active = (prompt: string) => [...oracle.condition(prompt).active];
  assert.deepEqual(active(""), where(() => true));
  assert.deepEqual(active("a red circle"), where((s) => has(s, "red", "circle")));
  assert.deepEqual(active("red"), where((s) => s.objects.some((o) => o.colour === "red")));
  // bag of words would also take a red square next to a blue circle
  const bag = shapesOracle(world, { binding: false });
  assert.ok(bag.condition("a red circle").active.length > active("a red circle").length);
  // a relation binds the first object, the relation and the second object
  const s = world.scenes.find((s) => s.objects.length === 2)!;
  const [a, b] = s.objects;
  const expected = where((t) =>
    t.relation === s.relation && t.objects[0].colour === a.colour &&
    t.objects[0].shape === a.shape &&
    t.objects[1].colour === b.colour && t.objects[1].shape === b.shape
  );
  const prompt = `a ${a.colour} ${a.shape} ${s.relation} a ${b.colour} ${b.shape}`;
  assert.deepEqual(active(prompt), expected);
  assert.ok(expected.includes(world.scenes.indexOf(s)));
  // unknown English words are ignored, as by the mixture
  assert.deepEqual(active("a red circle on the table"), active("a red circle"));
});

Deno.test("log p(x | caption) − log p(x) = log(N / N_caption) for a scene's own caption", () => {
  for (const k of [0, 1, 2, 3, 4, 5, 6, 7]) {
    const scene = world.scenes[k], x = scene.toData();
    const n = oracle.condition(scene.caption).active.length;
    const info = oracle.logDensity(x, scene.caption) - oracle.logDensity(x, "");
    // the other components are ≥ 50/(2v) nats away: their share is below e^-1000
    assert.ok(Math.abs(info - Math.log(N / n)) < 1e-6, `${info} vs ${Math.log(N / n)}`);
    // a caption of two or more objects is specific: few scenes' captions contain it
    if (scene.objects.length >= 2) {
      assert.ok(info > Math.log(10), `"${scene.caption}": ${info} nats`);
    }
  }
});

Deno.test("a word's conditional information is log(N_context / N_caption) ≥ 0", () => {
  for (const scene of world.scenes.slice(0, 20)) {
    const x = scene.toData();
    for (const word of [scene.objects[0].colour, scene.objects[0].shape]) {
      const context = removeWord(scene.caption, word);
      const nCaption = oracle.condition(scene.caption).active.length;
      const nContext = oracle.condition(context).active.length;
      const cmi = oracle.logDensity(x, scene.caption) - oracle.logDensity(x, context);
      assert.ok(Math.abs(cmi - Math.log(nContext / nCaption)) < 1e-6);
      assert.ok(nContext >= nCaption);
    }
  }
});

Deno.test("swapped objects or colours (the ARO false captions) have far lower likelihood", () => {
  let compared = 0;
  for (const scene of world.scenes.filter((s) => s.objects.length === 2).slice(0, 15)) {
    const [a, b] = scene.objects;
    const x = scene.toData();
    const d = (o: typeof a) => `a ${o.colour} ${o.shape}`;
    const swappedObjects = `${d(b)} ${scene.relation} ${d(a)}`;
    const swappedColours = `${d({ ...a, colour: b.colour })} ${scene.relation} ${
      d({ ...b, colour: a.colour })
    }`;
    const truth = oracle.logDensity(x, `${d(a)} ${scene.relation} ${d(b)}`);
    for (const wrong of [swappedObjects, swappedColours]) {
      try {
        assert.ok(truth - oracle.logDensity(x, wrong) > 1000);
        compared++;
      } catch (e) {
        if (!(e instanceof PromptError)) throw e; // no scene has that caption: p(x | wrong) = 0
      }
    }
  }
  assert.ok(compared >= 5);
});

Deno.test("ε̂ is the exact posterior mean: closed form when one component is active", async () => {
  const s0 = world.scenes.find((s) => oracle.condition(s.caption).active.length === 1)!;
  const c = await oracle.encode(s0.caption);
  const mean = s0.toData(), d = mean.length, v = SHAPES_ORACLE_VARIANCE;
  const noisy = new Float32Array(d);
  for (let i = 0; i < d; i++) noisy[i] = 0.5 * mean[i] + Math.sin(i); // any z
  for (const alpha of [-3, 0, 2.5, 6]) {
    const out = await oracle.predictNoise({
      noisy,
      logSnr: Float64Array.of(alpha),
      conditions: [c],
    });
    const s = 1 / (1 + Math.exp(-alpha));
    for (let i = 0; i < d; i += 97) {
      const exact = Math.sqrt(1 - s) * (noisy[i] - Math.sqrt(s) * mean[i]) / (s * v + 1 - s);
      assert.ok(Math.abs(out[i] - exact) < 1e-5 * (1 + Math.abs(exact)), `α=${alpha} i=${i}`);
    }
  }
  assert.equal(c.prompt, s0.caption); // the condition keeps the user's prompt, not the tokens
});

Deno.test("prompts no scene's caption contains are refused", () => {
  assert.throws(() => oracle.condition("a red circle left of a red circle"), PromptError);
  assert.throws(
    () => oracle.condition("a red circle left of a blue square above a green triangle"),
    /more than one relation/,
  );
  const words = ["a", "small", "red", "circle", "left", "of", "blue", "square"];
  assert.deepEqual(
    oracle.promptTokens("a small red circle left of a blue square").sort(),
    [...words, "smallredcircle", "bluesquare", "smallredcircleleftofbluesquare"].sort(),
  );
  assert.ok(
    oracle.promptTokens("a small circle left of a blue square").includes(
      "smallcircleleftofbluesquare",
    ),
  );
});
