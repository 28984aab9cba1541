/**
 * Prompt intervention on the example oracle (exact denoiser, 36 narrow components each carrying a
 * colour, a shape and a place word).
 *
 * Known truths used here:
 * - a word no component carries ("the", "a", "on") leaves the oracle's condition unchanged, so
 *   the edited and the unchanged-caption regenerations are computed identically: change exactly
 *   0; and the two conditions' ε̂ are identical: orthogonal information exactly 0;
 * - a carried word has information > 0; removing it widens the condition, and when the widened
 *   DDIM flow from the same x_T lands on another component the change lies where the pictures of
 *   the two components differ (seed 13, "red": it lands on another colour of the same circle, so
 *   the change lies inside the circle's mask);
 * - hence the per-item pixel-level correlation is strongly positive: where an edit changes the
 *   image at all, it changes it where the two components' pictures differ, which is where the
 *   word's information map lies (measured r ≈ 0.93 ± 0.03 over the 9 items that change; asserted
 *   r − 2·SE > 0.5). Uncarried words change nothing, so their maps are constant and excluded;
 * - the image-level correlation is weak on this exact oracle (measured r ≈ 0.01 ± 0.15): DDIM
 *   inversion under the exact posterior keeps the component's identity in x_T, so removing a
 *   carried word rarely flips the regenerated image (1 of 12 carried words here) and the change is
 *   nearly binary, while the information varies with the draw. Asserted only: a finite r with a
 *   finite bootstrap SE > 0.
 */
import assert from "node:assert/strict";
import { drawShape } from "../src/datasets/shapes/draw.ts";
import { Heatmap } from "../src/images/heatmap.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import type { Model } from "../src/query/model.ts";
import {
  interveneOne,
  type InterventionItem,
  interventionStudy,
} from "../src/studies/intervention.ts";
import { InterventionResult } from "../src/studies/intervention-result.ts";
import { interventionScatter } from "../src/plots/study-charts.ts";

const FAST = { steps: 30, samples: 24, resamples: 200 } as const;
const model = exampleOracle();

function items(): InterventionItem[] {
  const captions = [EXAMPLE_PROMPT, "a green square on the top", "a blue triangle on the right"];
  return captions.flatMap((caption, c) =>
    caption.split(" ").map((word, w) => ({
      image: model.sample(caption, { seed: 13 + 7 * c + w }),
      caption,
      word,
    }))
  );
}

Deno.test("a word the model ignores changes nothing and carries no information, exactly", async () => {
  for (const word of ["the", "a", "on"]) {
    const image = model.sample(EXAMPLE_PROMPT, { seed: 3 });
    const result = await interveneOne(model, { image, caption: EXAMPLE_PROMPT, word }, FAST);
    assert.equal(result.record.change, 0, word);
    assert.equal(result.record.information.nats, 0, word);
    assert.ok(result.changeMap.data.every((v) => v === 0));
    assert.ok(result.informationMap.data.every((v) => v === 0));
  }
});

Deno.test("removing a carried word changes the regenerated image where the object is", async () => {
  const image = model.sample(EXAMPLE_PROMPT, { seed: 13 });
  // 400 draws: per-draw values are heavy-tailed here (24 draws gave 0.06 ± 0.05 with this item's
  // seed, 400 give 1.46 ± 0.40), and the claim is that the carried word has information
  const result = await interveneOne(model, { image, caption: EXAMPLE_PROMPT, word: "red" }, {
    steps: 50,
    samples: 400,
  });
  assert.equal(result.record.edited, "a _ circle on the left");
  assert.ok(result.record.information.nats > 0.3, `${result.record.information.nats}`);
  assert.ok(result.record.change > 50, `change ${result.record.change}`);
  // the example oracle's red circle on the left: centre (0.27·16, 8), radius 0.2·16
  const mask = drawShape("circle", 16, 0.27 * 16, 8, 3.2);
  const inside = result.changeMap.data.reduce((s, v, p) => s + (mask[p] ? v : 0), 0);
  assert.ok(inside / result.record.change > 0.99, `share inside ${inside / result.record.change}`);
  // the reconstruction is close to the original (inversion works), the edit is not
  const mse = (a: Float32Array) => a.reduce((s, v, j) => s + (v - image[j]) ** 2, 0) / a.length;
  assert.ok(mse(result.reconstruction) < 5e-3 && mse(result.edited) > 0.1);
});

Deno.test("swapping a word for another generates with the swapped caption", async () => {
  const image = model.sample(EXAMPLE_PROMPT, { seed: 2 });
  const result = await interveneOne(
    model,
    { image, caption: EXAMPLE_PROMPT, word: "red", replacement: "blue" },
    FAST,
  );
  assert.equal(result.record.edited, "a blue circle on the left");
  assert.equal(result.record.context, "a _ circle on the left");
  // the only blue circle on the left differs from the red one in the circle's pixels
  assert.ok(result.record.change > 100, `${result.record.change}`);
});

Deno.test("correlation is positive on a mixed set, with bootstrap SEs; resume recomputes nothing", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  let reported = 0;
  const first = await interventionStudy(model, items(), {
    ...FAST,
    results: file,
    onProgress: (p) => reported = p.done,
  });
  assert.equal(reported, 18);
  assert.equal(first.items.length, 18);
  assert.equal(first.attention, "unavailable");
  const { image, pixel, pixelPooled } = first.information;
  assert.ok(pixel.r - 2 * pixel.se > 0.5, `pixel-level r ${pixel.r} ± ${pixel.se}`);
  assert.ok(Number.isFinite(image.r) && Number.isFinite(image.se) && image.se > 0, `${image.r}`);
  assert.ok(Number.isFinite(pixelPooled.r) && pixelPooled.se > 0);
  // "a", "on", "the" change nothing: constant maps cannot enter a per-item r
  assert.equal(pixel.excluded, 9);
  assert.equal(pixel.n, 9);

  // a model that fails on any call: resuming must not call it
  const broken: Model = {
    ...model,
    predictNoise: () => Promise.reject(new Error("recomputed an item that was on disk")),
  };
  const again = await interventionStudy(broken, items(), { ...FAST, results: file });
  assert.equal(again.resumed, 18);
  assert.deepEqual(again.information, first.information);
  assert.ok(interventionScatter(first).svg.includes("Pearson r"));
  assert.ok(first.toString().includes("unavailable for this model"));
  await Deno.remove(file);
});

Deno.test("attention baseline: correlated when supported, 'unavailable' when not; bad rows skipped", async () => {
  const brightness = {
    supportsAttention: () => true,
    wordAttention: (_m: Model, data: Float32Array) =>
      Promise.resolve(
        new Heatmap(16, 16, Float32Array.from(data.subarray(0, 256), (v) => (v + 1) / 2)),
      ),
  };
  const some = [...items().slice(0, 4), {
    image: model.sample("a red circle"),
    caption: "a red circle",
    word: "blue",
  }];
  const result = await interventionStudy(model, some, { ...FAST, attention: brightness });
  assert.equal(result.failures.length, 1);
  assert.equal(result.failures[0].kind, "PromptError");
  assert.notEqual(result.attention, "unavailable");
  const off = await interventionStudy(model, some.slice(0, 3), {
    ...FAST,
    attention: { ...brightness, supportsAttention: () => false },
  });
  assert.equal(off.attention, "unavailable");
  const json = JSON.parse(JSON.stringify(result));
  assert.equal(json.items.length, 4);
  assert.ok(result instanceof InterventionResult);
});

Deno.test("each item gets its own seed from its content; image-level attention is the raw map's sum", async () => {
  const { rowSeed } = await import("../src/studies/row-seed.ts");
  // a raw map whose scale differs per item: its sum carries what a min–max normalised map loses
  const scaled = {
    supportsAttention: () => true,
    wordAttention: (
      _m: Model,
      data: Float32Array,
      _p: string,
      _w: string,
      o: { normalize?: boolean },
    ) => {
      assert.equal(o.normalize, false, "the study asks for DAAM's raw map");
      const scale = 1 + Math.abs(data[0]) * 10;
      return Promise.resolve(
        new Heatmap(16, 16, Float32Array.from(data.subarray(0, 256), (v) => scale * (v + 1))),
      );
    },
  };
  const some = items().slice(0, 5);
  const result = await interventionStudy(model, some, { ...FAST, seed: 7, attention: scaled });
  const seeds = result.items.map((i) => i.seed);
  assert.equal(new Set(seeds).size, seeds.length, "seeds differ between items");
  for (const [index, item] of some.entries()) {
    const data = await model.prepare(item.image);
    const record = result.items.find((r) => r.caption === item.caption && r.word === item.word)!;
    assert.equal(
      record.seed,
      rowSeed(7, data, `${item.caption}\n${item.word}\n${record.edited}`),
      `item ${index}`,
    );
  }
  // image-level r is between the change and the raw maps' sums (each item re-run alone: the
  // same seed gives the same numbers)
  const alone = await Promise.all(
    some.map((item) => interveneOne(model, item, { ...FAST, seed: 7, attention: scaled })),
  );
  const sums = alone.map((c) => c.record.attentionMap!.reduce((s, v) => s + v, 0));
  const changes = alone.map((c) => c.record.change);
  assert.ok(result.attention !== "unavailable");
  const r = pearsonOf(changes, sums);
  if (Number.isFinite(r)) {
    assert.ok(Math.abs(result.attention.image.r - r) < 1e-9, `${result.attention.image.r} vs ${r}`);
  } else assert.ok(!Number.isFinite(result.attention.image.r));
});

function pearsonOf(x: number[], y: number[]): number {
  const n = x.length, mx = x.reduce((a, b) => a + b) / n, my = y.reduce((a, b) => a + b) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

Deno.test("image level is the standard estimator, pixel level the orthogonal, from the same draws", async () => {
  const { conditionalInformation } = await import(
    "../src/estimators/conditional-information.ts"
  );
  const image = model.sample(EXAMPLE_PROMPT, { seed: 13 });
  const item = { image, caption: EXAMPLE_PROMPT, word: "red" };
  const { record } = await interveneOne(model, item, { ...FAST, seed: 3 });
  // the same seed and draws, each form estimated on its own: identical numbers
  for (const estimator of ["standard", "orthogonal"] as const) {
    const alone = await conditionalInformation(model, image, EXAMPLE_PROMPT, "red", {
      samples: FAST.samples,
      seed: record.seed,
      estimator,
      placeholder: "_",
    });
    const stored = estimator === "standard" ? record.information : record.informationOrthogonal!;
    assert.equal(stored.nats, alone.estimate.nats, estimator);
    assert.equal(stored.se, alone.estimate.se, estimator);
    if (estimator === "orthogonal") {
      assert.deepEqual(record.informationMap, Array.from(alone.map.data));
    }
  }
  // the two forms are different estimators of the same number
  assert.notEqual(record.information.nats, record.informationOrthogonal!.nats);
  await assert.rejects(
    () => interveneOne(model, item, { ...FAST, estimator: "orthogonal" }),
    /both estimator forms/,
  );
});

Deno.test("the edit replaces every occurrence and the plural, as the reference's word swaps", async () => {
  const { interventionPrompts } = await import("../src/studies/intervention.ts");
  const item = { caption: "A dog and two Dogs near a dog's bed, no hotdogs", word: "dog" };
  // worked by hand with re.sub(r"\b(dog|dogs)\b", ..., flags=re.IGNORECASE)
  assert.deepEqual(interventionPrompts(item), {
    context: "A _ and two _ near a _'s bed, no hotdogs",
    edited: "A _ and two _ near a _'s bed, no hotdogs",
  });
  assert.equal(
    interventionPrompts({ ...item, replacement: "cat" }).edited,
    "A cat and two cats near a cat's bed, no hotdogs",
  );
  assert.equal(
    interventionPrompts({ caption: "two teddy bears", word: "teddy bear" }).context,
    "two _",
  );
  assert.equal(interventionPrompts(item, "").context, "A and two near a 's bed, no hotdogs");
  assert.throws(() => interventionPrompts({ caption: "a cat", word: "dog" }), /not in the prompt/);
});

// ---------------------------------------------------------------------------------------------
// Issue 23 (d): the reference traces DAAM inside its Karras–Heun regeneration of the
// reconstruction (`image_edit.py` 104–106: `trace(sdm.sdm_pipe)` around `utils.generate(…,
// latent_real, prompt)`), not along a separate DDIM run. Known truth, with the recording fake of
// tests/attention-fake.ts: the traced calls are exactly the regeneration's calls, and a study with
// attention makes exactly the calls of one without.

Deno.test("interventions gather attention inside their own regeneration: the reconstruction's items, no extra model call", async () => {
  const { recordingAttentionModel, callItems, expectedRawMap } = await import(
    "./attention-fake.ts"
  );
  const { heunBatch } = await import("../src/generation/karras-heun.ts");
  const { ddimBatch } = await import("../src/generation/ddim.ts");
  const caption = "a red circle", edited = "a _ circle";
  const image = Float32Array.from({ length: 16 }, (_, p) => (p % 4 < 2 ? 0.9 : -0.9));
  const item = { image, caption, word: "red" };
  for (const sampler of ["karras-heun", "ddim"] as const) {
    const options = { steps: 8, samples: 8, sampler };
    const run = sampler === "ddim" ? ddimBatch : heunBatch;
    const on = recordingAttentionModel();
    const result = await interveneOne(on.model, item, options);
    const off = recordingAttentionModel();
    await interveneOne(off.model, item, { ...options, attention: false });
    // the same calls, in number, order and noise level: tracing adds none
    assert.deepEqual(on.calls.map((c) => c.logSnr), off.calls.map((c) => c.logSnr), sampler);
    // the traced calls are the regeneration's, from the inversion's state, both prompts together
    const plain = recordingAttentionModel();
    const [noise] = await run(plain.model, [{ prompt: caption, start: image }], "invert", {
      steps: 8,
    });
    const inverted = plain.calls.length;
    await run(
      plain.model,
      [{ prompt: caption, start: noise }, { prompt: edited, start: noise }],
      "generate",
      { steps: 8 },
    );
    const regeneration = plain.calls.slice(inverted);
    const traced = on.calls.filter((c) => c.kind === "attention");
    assert.equal(traced.length, regeneration.length, sampler);
    traced.forEach((c, k) => {
      assert.deepEqual(c.logSnr, regeneration[k].logSnr, `${sampler} call ${k}`);
      assert.deepEqual(c.noisy, regeneration[k].noisy, `${sampler} call ${k}`);
      assert.deepEqual(c.prompts, [caption, edited]);
    });
    // DAAM's raw map over the reconstruction's items only
    const expected = expectedRawMap(
      callItems(regeneration).filter((i) => i.prompt === caption).map((i) => i.noisy),
    );
    const worst = Math.max(
      ...result.record.attentionMap!.map((v, p) => Math.abs(v - expected.data[p])),
    );
    assert.ok(worst < 1e-6, `${sampler}: max |Δ| = ${worst}`);
  }
  // attentionAt: "inversion" traces the inversion's calls instead, still with no extra call
  const inv = recordingAttentionModel();
  await interveneOne(inv.model, item, { steps: 8, samples: 8, attentionAt: "inversion" });
  const heunCalls = 2 * 7; // 8 levels: 7 Heun steps of two calls
  assert.deepEqual(
    inv.calls.slice(0, heunCalls + 1).map((c) => c.kind),
    [...Array(heunCalls).fill("attention"), "noise"],
  );
  await assert.rejects(
    () =>
      interveneOne(inv.model, item, { steps: 8, samples: 8, attentionAt: "trajectory" as never }),
    /unknown attentionAt "trajectory"; expected one of "sampled", "regeneration", "inversion"/,
  );
});

Deno.test("a tagged array ({ data }, { pixels }) is hashed with its tag: a study on one resumes, and the tag tells two images apart", async () => {
  const { imageIdPart, contentId } = await import("../src/studies/content-id.ts");
  const values = model.sample(EXAMPLE_PROMPT, { seed: 13 });
  const idOf = (image: unknown) => contentId("x", imageIdPart(image));
  assert.notEqual(
    idOf({ data: values }),
    idOf({ pixels: values }),
    "pixels and data are two images",
  );
  assert.notEqual(idOf({ data: values }), idOf({ data: values.map((v) => v + 1e-3) }));
  assert.equal(
    idOf({ data: values }),
    idOf({ data: Float32Array.from(values) }),
    "content, not identity",
  );
  assert.throws(() => imageIdPart({ toBuffer: () => 0 }), /explicit `id`/);

  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  const tagged = [{ image: { data: values }, caption: EXAMPLE_PROMPT, word: "red" }];
  const first = await interventionStudy(model, tagged, { ...FAST, results: file });
  const bare = await interventionStudy(model, [{ ...tagged[0], image: values }], FAST);
  assert.equal(first.items.length, 1);
  assert.equal(first.items[0].change, bare.items[0].change, "the tag changes the id, not the item");
  const broken: Model = {
    ...model,
    predictNoise: () => Promise.reject(new Error("recomputed an item that was on disk")),
  };
  const again = await interventionStudy(broken, tagged, { ...FAST, results: file });
  assert.equal(again.resumed, 1);
  await Deno.remove(file);
});
