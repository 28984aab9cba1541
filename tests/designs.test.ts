/**
 * Draw designs (issue 15) against exact truth.
 *
 * Known truths used here:
 * - every design estimates the same integral: the standard estimator's mean over seeds equals the
 *   exact log-density difference of a mixture within 3 SE (of the mean over seeds) plus the
 *   truncation allowance of the sampled interval;
 * - the orthogonal estimator averaged over x ~ p(x | y) is the exact mutual information i(X; y),
 *   computed here by the standard form's exact values averaged over the same images;
 * - stratified α puts exactly one α group in each quantile stratum of the truncated logistic;
 *   antithetic ε gives each odd draw of a pair −ε of the even one, at the same α;
 * - a precision target: rounds are independent replicates, so a target met by the first round
 *   changes nothing; one that is not met draws more until the SE is at most the target; a target
 *   met on the units (not only the collapsed strata) leaves every run within twice the target of
 *   a 40,000-draw reference on the heavy-tailed example oracle.
 */
import assert from "node:assert/strict";
import { DRAW_DESIGNS, drawBlocks } from "../src/estimators/draws.ts";
import { setWarningHandler } from "../src/warnings.ts";
import { withMembers } from "../src/models/denoiser.ts";
import { REFERENCE_LOG_SNR } from "../src/numerics/log-snr.ts";
import { meanWithError } from "../src/numerics/statistics.ts";
import { assertWithin, colourShapeMixture, TRUNCATION_ALLOWANCE, WIDE } from "./helpers.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";

const model = colourShapeMixture();

Deno.test("every design is unbiased for the exact log-density difference", async () => {
  const x = model.sample("red circle", { seed: 11 });
  const truth = model.logDensity(x, "red circle") - model.logDensity(x, "circle");
  for (const design of DRAW_DESIGNS) {
    const values: number[] = [];
    for (let seed = 0; seed < 150; seed++) {
      const e = await model.info(x).given("red circle").estimator("standard").logSnr(WIDE)
        .samples(40).design(design).seed(seed).about("red");
      values.push(e.nats);
    }
    const { mean, se } = meanWithError(values);
    assertWithin({ nats: mean, se }, truth, 3, TRUNCATION_ALLOWANCE);
  }
});

Deno.test("every design's orthogonal estimate averages to the exact mutual information", async () => {
  // i(X; red) = E_{x ~ p(x|red)}[log p(x|red) − log p(x)]: exact values averaged over the images
  const images = Array.from({ length: 60 }, (_, i) => model.sample("red", { seed: 900 + i }));
  const exact = images.map((x) => model.logDensity(x, "red") - model.logDensity(x, ""));
  const truth = exact.reduce((s, v) => s + v, 0) / exact.length;
  for (const design of DRAW_DESIGNS) {
    const values: number[] = [];
    for (const [i, x] of images.entries()) {
      values.push(
        (await model.info(x).given("red").logSnr(WIDE).samples(40).design(design)
          .seed(i).total()).nats,
      );
    }
    // the spread over images includes the images' own spread, as the exact average does
    const { mean, se } = meanWithError(values);
    assertWithin({ nats: mean, se }, truth, 3, TRUNCATION_ALLOWANCE);
  }
});

Deno.test("stratified α: one group per quantile stratum; antithetic ε: −ε at the same α", () => {
  const plan = {
    samples: 40,
    seed: 5,
    logSnr: REFERENCE_LOG_SNR,
    size: 3,
    blockSize: 7, // blocks cut pairs apart: the partner's −ε must still be found
    drawsPerLogSnr: 2,
    design: "stratified-antithetic" as const,
  };
  const draws = [...drawBlocks(plan)].flatMap((b) =>
    Array.from({ length: b.count }, (_, i) => ({
      logSnr: b.logSnr[i],
      noise: Array.from(b.noise.subarray(i * 3, (i + 1) * 3)),
    }))
  );
  const { loc, scale, clip } = REFERENCE_LOG_SNR;
  const sigmoid = (t: number) => 1 / (1 + Math.exp(-t));
  const quantile = (a: number) =>
    (sigmoid((a - loc) / scale) - sigmoid(-clip)) / (sigmoid(clip) - sigmoid(-clip));
  for (let g = 0; g < 20; g++) {
    const [even, odd] = [draws[2 * g], draws[2 * g + 1]];
    assert.equal(Math.floor(quantile(even.logSnr) * 20 + 1e-9), g, `group ${g} in stratum ${g}`);
    assert.equal(odd.logSnr, even.logSnr);
    assert.deepEqual(odd.noise, even.noise.map((v) => -v));
  }
  // the same draws whatever the block size
  const again = [...drawBlocks({ ...plan, blockSize: 40 })][0];
  assert.deepEqual(Array.from(again.logSnr), draws.map((d) => d.logSnr));
});

Deno.test("the same seed gives the same numbers; maps sum to their scalars", async () => {
  const x = model.sample("red circle", { seed: 3 });
  for (const design of DRAW_DESIGNS) {
    const q = model.info(x).given("red circle").samples(30).design(design).seed(4);
    const [a, b] = [await q.perPixel(), await q.perPixel()];
    assert.equal(a.estimate.nats, b.estimate.nats);
    // the map is stored in float32: its sum matches to float32 rounding
    assert.ok(Math.abs(a.map.sum() - a.estimate.nats) < 1e-6 * Math.max(1, a.estimate.nats));
  }
  assert.throws(() => model.info(x).design("sobol" as never), /unknown draw design "sobol"/);
});

Deno.test("precision: draws in rounds until the SE reaches the target, or warns at the budget", async () => {
  const x = model.sample("red circle", { seed: 3 });
  const q = model.info(x).given("red circle").estimator("standard").samples(20).seed(1);
  const plain = await q.about("red");
  // a target the first round meets changes nothing (met on the larger of the collapsed strata's
  // SE and the units' plain SE, which a stratified round of 20 draws can put a few times apart)
  const loose = await q.precision(plain.se * 10).about("red");
  assert.equal(loose.nats, plain.nats);
  assert.equal(loose.samples, 20);
  // a tighter one draws more, and stops once it is reached
  const target = plain.se / 3;
  const tight = await q.precision(target, { maxSamples: 5000 }).about("red");
  assert.ok(tight.se <= target, `${tight.se} > ${target}`);
  assert.ok(tight.samples > 20 && tight.samples <= 5000, `${tight.samples} draws`);
  // a budget too small: what was reached is reported
  const seen: string[] = [];
  const previous = setWarningHandler((m) => seen.push(m));
  try {
    const capped = await q.precision(target / 100, { maxSamples: 60 }).about("red");
    assert.equal(capped.samples, 60);
  } finally {
    setWarningHandler(previous);
  }
  assert.equal(seen.length, 1);
  assert.match(seen[0], /not reached within 60 draws/);
  assert.throws(() => q.precision(-1), /se > 0/);
  assert.throws(() => q.precision(0.1, { maxSamples: 10 }), /below the first round's 20 draws/);
});

Deno.test("precision of words: a perToken target covers its words, not the whole prompt", async () => {
  // the whole prompt's i(x; prompt) has the largest SE of a perToken query (on real prompts several
  // times a word's): a target meant for the words ran the query on until the total met it too
  const oracle = exampleOracle();
  const x = oracle.sample(EXAMPLE_PROMPT, { seed: 1 });
  const q = oracle.info(x).given(EXAMPLE_PROMPT).samples(40).seed(2);
  const plain = await q.perToken();
  const target = Math.max(...plain.tokens.map((t) => t.estimate.se)) / 2;
  const words = await q.precision(target, { of: "words", maxSamples: 20_000 }).perToken();
  const all = await q.precision(target, { maxSamples: 20_000 }).perToken();
  for (const result of [words, all]) {
    for (const t of result.tokens) {
      assert.ok(t.estimate.se <= target, `${t.word}: ${t.estimate.se}`);
    }
  }
  // here the words' target stops at 1,248 draws, the total's at 2,865
  assert.ok(all.total.se <= target);
  assert.ok(
    words.total.samples < all.total.samples / 2,
    `${words.total.samples} against ${all.total.samples} draws`,
  );
  // the scope is recorded, and only when it is not the default
  assert.deepEqual(words.provenance?.settings.precision, {
    se: target,
    maxSamples: 20_000,
    of: "words",
  });
  assert.deepEqual(all.provenance?.settings.precision, { se: target, maxSamples: 20_000 });
  // a total has no words to cover; an unknown scope is refused at once
  await assert.rejects(
    () => q.precision(target, { of: "words" }).total(),
    (e: Error) =>
      e.name === "InvalidArgumentError" && /covers a perToken query's words/.test(e.message),
  );
  assert.throws(
    () => q.precision(target, { of: "word" as never }),
    /precision.of is "word"; expected "all"/,
  );
  // a target not reached for the total says the words can have their own
  const seen: string[] = [];
  const previous = setWarningHandler((m) => seen.push(m));
  try {
    await q.precision(target / 4, { maxSamples: 80 }).perToken();
  } finally {
    setWarningHandler(previous);
  }
  assert.equal(seen.length, 1);
  assert.match(
    seen[0],
    /not reached within 80 draws.*\{ of: "words" \} sets the target for the words alone/,
  );
});

Deno.test("precision: a target is met on the units, not only on the collapsed strata", async () => {
  // The example oracle's draws are heavy-tailed: 50 stratified draws often miss the narrow α band
  // where a word's information lies, and the collapsed-strata SE then comes out a fraction of the
  // units' own. A target checked on it alone stopped such runs at 50 draws, 1 nat below the value
  // with an SE of 0.16 (7 of 60 seeds off by more than twice the target); checked on the larger of
  // the two, as the interval is, every run is within twice the target of a 40,000-draw reference.
  const oracle = exampleOracle();
  const x = oracle.sample(EXAMPLE_PROMPT, { seed: 1 });
  const q = oracle.info(x).given(EXAMPLE_PROMPT);
  const reference = await q.samples(40_000).seed(999).adapt(false).total();
  const target = 0.3;
  let within = 0;
  const seeds = 60;
  for (let seed = 0; seed < seeds; seed++) {
    const e = await q.samples(50).seed(seed).precision(target, { maxSamples: 4000 }).total();
    assert.ok(e.se <= target, `seed ${seed}: ${e.se} > ${target}`);
    if (Math.abs(e.nats - reference.nats) <= 2 * Math.hypot(target, reference.se)) within++;
  }
  assert.ok(within >= 0.95 * seeds, `${within} of ${seeds} runs within 2 × the target`);
});

Deno.test("the fitted proposal: its density integrates to its quantiles, and it is unbiased", async () => {
  const { calibrateProfile } = await import("../src/estimators/calibrate.ts");
  const { fittedProposal } = await import("../src/numerics/proposal.ts");
  const rows = [1, 2, 3].map((seed) => ({
    data: model.sample("red circle", { seed }),
    prompt: "red circle",
  }));
  const profile = await calibrateProfile(model, rows, { samples: 100, logSnr: WIDE, bins: 16 });
  // the weight is 1/q(α): between the quantiles α(p₁) and α(p₂), ∫q = p₂ − p₁ (trapezoid rule
  // on 4000 quantiles, across the bins' jumps of q)
  const q = fittedProposal(WIDE, profile);
  const points = Array.from({ length: 4001 }, (_, i) => q.at(0.0005 + (i / 4000) * 0.999));
  let integral = 0;
  for (let i = 0; i < 4000; i++) {
    const [a, b] = [points[i], points[i + 1]];
    integral += (b.logSnr - a.logSnr) * (1 / a.weight + 1 / b.weight) / 2;
  }
  assert.ok(Math.abs(integral - 0.999) < 2e-3, `∫q = ${integral}, expected 0.999`);
  // unbiased for the exact log-density difference, like every design
  const fitted = withMembers(model, { logSnrProfile: profile });
  const x = model.sample("red circle", { seed: 11 });
  const truth = model.logDensity(x, "red circle") - model.logDensity(x, "circle");
  const values: number[] = [];
  for (let seed = 0; seed < 150; seed++) {
    values.push(
      (await fitted.info(x).given("red circle").estimator("standard").logSnr(WIDE)
        .samples(40).seed(seed).about("red")).nats,
    );
  }
  const { mean, se } = meanWithError(values);
  assertWithin({ nats: mean, se }, truth, 3, TRUNCATION_ALLOWANCE);
});

Deno.test("calibration fits each word where its information lies, and a query draws from its words' profiles", async () => {
  const { calibrateProfile } = await import("../src/estimators/calibrate.ts");
  const { planProposal } = await import("../src/estimators/contrast-profile.ts");
  const { resolveProposal } = await import("../src/estimators/options.ts");
  const { mixtureModel } = await import("../src/query/oracles.ts");
  // colours 4 apart, shapes 0.3 apart: noise hides the shape long after it stops hiding the
  // colour, so "circle"'s information lies at higher α (more signal) than "red"'s
  const separated = mixtureModel({
    shape: [1, 1, 2],
    components: [
      { words: ["red", "circle"], mean: [2, 0], variance: 0.005 },
      { words: ["red", "square"], mean: [2, 0.3], variance: 0.005 },
      { words: ["blue", "circle"], mean: [-2, 0], variance: 0.005 },
      { words: ["blue", "square"], mean: [-2, 0.3], variance: 0.005 },
    ],
  });
  const rows = [1, 2, 3].map((seed) => ({
    data: separated.sample("red circle", { seed }),
    prompt: "red circle",
  }));
  const profile = await calibrateProfile(separated, rows, { samples: 200, logSnr: WIDE });
  assert.deepEqual(Object.keys(profile.words ?? {}), ["circle", "red"]);
  assert.equal(profile.words!.red.contrasts, 3);
  assert.equal(profile.wholePrompt?.contrasts, 3);
  // the peaks are 5 bins (4 α) apart at these seeds
  const peak = (mass: readonly number[]) => mass.indexOf(Math.max(...mass));
  const red = peak(profile.words!.red.mass), circle = peak(profile.words!.circle.mass);
  assert.ok(circle >= red + 3, `profile peaks: red in bin ${red}, circle in bin ${circle}`);
  // a query about one word draws from that word's profile; the model's one serves unseen words
  const fitted = resolveProposal(withMembers(separated, { logSnrProfile: profile }), undefined);
  const massOf = (richer: string, poorer: string) => {
    const p = planProposal(fitted, {
      prompts: [richer, poorer],
      contrasts: [{ with: 0, without: 1 }],
    });
    return p.kind === "fitted" ? p.profile.mass : [];
  };
  const near = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-12);
  assert.ok(near(massOf("red circle", "circle"), profile.words!.red.mass));
  assert.ok(near(massOf("a red circle", "a red"), profile.words!.circle.mass));
  assert.ok(near(massOf("red circle", ""), profile.wholePrompt!.mass));
  assert.ok(near(massOf("a green circle", "a circle"), profile.mass));
  // and it is unbiased for the exact log-density difference on those draws
  const x = separated.sample("red circle", { seed: 11 });
  const truth = separated.logDensity(x, "red circle") - separated.logDensity(x, "red");
  const values: number[] = [];
  for (let seed = 0; seed < 150; seed++) {
    values.push(
      (await withMembers(separated, { logSnrProfile: profile }).info(x).given("red circle")
        .estimator("standard").logSnr(WIDE).samples(40).seed(seed).about("circle")).nats,
    );
  }
  const { mean, se } = meanWithError(values);
  assertWithin({ nats: mean, se }, truth, 3, TRUNCATION_ALLOWANCE);
});

Deno.test("a malformed word or whole-prompt profile is refused, saying what was wrong", async () => {
  const { checkProfile } = await import("../src/numerics/proposal.ts");
  const base = {
    kind: "infodiff.logSnrProfile",
    version: 1,
    model: { name: "m", shape: [1, 1, 1] },
    edges: [0, 1, 2],
    mass: [0.5, 0.5],
    calibration: {},
  } as const;
  const red = (mass: number[]) => ({ ...base, words: { red: { mass, contrasts: 1 } } });
  assert.throws(() => checkProfile(red([1])), /word "red": expected 2, one per bin, got 1/);
  assert.throws(
    () => checkProfile(red([0.7, 0.7])),
    /word "red" must .* sum to 1, got a sum of 1.4/,
  );
  assert.throws(
    () => checkProfile({ ...base, wholePrompt: { mass: [0.5, 0.5], contrasts: 0 } }),
    /the whole prompt needs a positive whole number of contrasts, got 0/,
  );
  assert.equal(checkProfile(red([0.25, 0.75])).words?.red.contrasts, 1);
});

Deno.test("a profile belongs to its model: fitted needs one, another model's is refused", async () => {
  const { resolveProposal } = await import("../src/estimators/options.ts");
  const { calibrateProfile } = await import("../src/estimators/calibrate.ts");
  assert.throws(() => resolveProposal(model, "fitted"), /has none/);
  const profile = await calibrateProfile(model, [{ data: model.sample("red"), prompt: "red" }], {
    samples: 30,
  });
  assert.equal(
    resolveProposal({ ...model, logSnrProfile: profile } as never, undefined).kind,
    "fitted",
  );
  const other = { ...model, name: "another model" } as never;
  assert.throws(() => resolveProposal(other, profile), /fitted on .* not on another model/);
  // calibration names the logistic share its smoothed profiles are for; a profile written before
  // (one unsmoothed profile, no share named) keeps the 0.5 it was measured with
  const resolved = resolveProposal(model, profile);
  assert.equal(profile.defensiveShare, 0.1);
  assert.equal(resolved.kind === "fitted" && resolved.lambda, 0.1);
  const { defensiveShare: _, words: _w, wholePrompt: _p, ...legacy } = profile;
  const old = resolveProposal(model, legacy);
  assert.equal(old.kind === "fitted" && old.lambda, 0.5);
  assert.throws(
    () => resolveProposal(model, { ...profile, defensiveShare: 0 }),
    /defensiveShare must be a number in \(0, 1\], got 0/,
  );
});

Deno.test("a model folder's profile is loaded with it and becomes the default proposal", async () => {
  const { loadModel } = await import("../src/query/load-model.ts");
  const tiny = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  const plain = await loadModel("fixtures/models/shapes-tiny", { device: "cpu", profile: false });
  try {
    assert.equal(tiny.logSnrProfile?.model.name, "shapes-tiny");
    assert.equal(plain.logSnrProfile, undefined);
    const data = new Float32Array(3 * 32 * 32).fill(0.1);
    const q = (m: typeof tiny) => m.info(data).given("a red circle").samples(4);
    const fitted = await q(tiny).total(), prior = await q(plain).total();
    assert.equal((fitted.provenance?.settings.proposal as { kind: string }).kind, "fitted");
    // without its profile, an SD-schedule model draws from its schedule (uniform timesteps)
    assert.deepEqual(prior.provenance?.settings.proposal, {
      kind: "schedule",
      lambda: 0.1,
      timesteps: 1000,
    });
    // the same draws of ε, other α: other numbers
    assert.notEqual(fitted.nats, prior.nats);
    assert.equal((await q(tiny).proposal("schedule").total()).nats, prior.nats);
    // a plan without contrasts (the likelihood) draws from the model's profile
    assert.ok(Number.isFinite((await q(tiny).nll()).nats));
    // the dry run names the profiles each contrast draws from (shapes-tiny's calibration saw
    // "red" and "circle"; "glowing" it never saw)
    assert.deepEqual(q(tiny).plan("perToken").proposal, {
      kind: "fitted",
      lambda: 0.1,
      profiles: [["whole prompt"], ["a"], ["red"], ["circle"]],
    });
    assert.deepEqual(
      tiny.info(data).given("a glowing circle").plan("about", "glowing").proposal,
      { kind: "fitted", lambda: 0.1, profiles: [["model"]] },
    );
    assert.deepEqual(q(plain).plan("total").proposal, {
      kind: "schedule",
      lambda: 0.1,
      timesteps: 1000,
    });
    assert.equal(q(plain).proposal("logistic").plan("total").proposal, "logistic");
  } finally {
    await tiny.dispose();
    await plain.dispose();
  }
});

Deno.test("design 'reference' is the reference's scheme: i.i.d. logistic at clip 4, warned about", async () => {
  const { loadModel } = await import("../src/query/load-model.ts");
  const { resolveOptions } = await import("../src/estimators/options.ts");
  const tiny = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  const seen: string[] = [];
  const previous = setWarningHandler((m) => seen.push(m));
  try {
    const resolved = resolveOptions(tiny, { design: "reference" });
    assert.equal(resolved.logSnr.clip, 4);
    assert.equal(resolved.proposal.kind, "logistic"); // not the folder's fitted profile
    assert.ok(seen.some((m) => /outside shapes-tiny's trained range/.test(m)), seen.join("\n"));
    // the same α stream as "iid" with that sampling
    const iid = resolveOptions(tiny, {
      design: "iid",
      proposal: "logistic",
      logSnr: resolved.logSnr,
      allowOutsideTrainedRange: true,
    });
    const blocks = (
      o: typeof iid,
    ) => [...drawBlocks({ ...o, size: 1, blockSize: 8, drawsPerLogSnr: 1 })];
    assert.deepEqual(blocks(resolved)[0].logSnr, blocks(iid)[0].logSnr);
  } finally {
    setWarningHandler(previous);
    await tiny.dispose();
  }
});

// issue 23 (b): the reference's localization (`pixel_level_nll`) and ARO (`nll`, itdiffusion.py
// 155–160) call `logistic_integrate(n, loc, scale)` without `clip` (utils.py 24: clip = 4.) with
// the configs' loc 1, scale 2 — not the trained range's loc and scale at clip 4 ([−7.44, 9.14] on
// SD's schedule)
Deno.test("design 'reference' draws the reference's law exactly: logistic(1, 2) truncated at ±4, α ∈ [−7, 9], w = 1/q", async () => {
  const { loadModel } = await import("../src/query/load-model.ts");
  const { resolveOptions } = await import("../src/estimators/options.ts");
  const { logSnrInterval } = await import("../src/numerics/log-snr.ts");
  const { exampleOracle } = await import("../src/query/oracles.ts");
  const tiny = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  const previous = setWarningHandler(() => {});
  try {
    // a model with a trained range (SD's schedule) and one without: the same law
    for (const m of [tiny, exampleOracle()]) {
      const { logSnr } = resolveOptions(m, { design: "reference" });
      assert.deepEqual({ ...logSnr }, { loc: 1, scale: 2, clip: 4 }, m.name);
      assert.deepEqual(logSnrInterval(logSnr), { min: -7, max: 9 });
    }
    const { logSnr, proposal } = resolveOptions(tiny, { design: "reference", samples: 20000 });
    const [block] = drawBlocks({
      samples: 20000,
      seed: 5,
      logSnr,
      proposal,
      design: "iid",
      size: 1,
      blockSize: 20000,
      drawsPerLogSnr: 1,
    });
    // closed form: q(α) = σ(t)σ(−t) / (2·(σ(4) − σ(−4))), t = (α − 1)/2
    const s = (x: number) => 1 / (1 + Math.exp(-x));
    let low = Infinity, high = -Infinity;
    block.logSnr.forEach((alpha, i) => {
      const t = (alpha - 1) / 2;
      const q = (s(t) * s(-t)) / (2 * (s(4) - s(-4)));
      assert.ok(Math.abs(block.weight[i] * q - 1) < 1e-9, `w(${alpha}) = ${block.weight[i]}`);
      low = Math.min(low, alpha);
      high = Math.max(high, alpha);
    });
    // the whole support is reached: P(α < −6.5) = P(α > 8.5) ≈ 0.0052, about 100 draws each
    assert.ok(low >= -7 && low < -6.5, `lowest α ${low}`);
    assert.ok(high <= 9 && high > 8.5, `highest α ${high}`);
  } finally {
    setWarningHandler(previous);
    await tiny.dispose();
  }
});
