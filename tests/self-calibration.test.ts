// Issue 26: a model without a calibrated profile still draws α where its information lies.
// Queries adapt (a pilot round from the prior, the rest from a profile fitted on it), studies
// calibrate themselves from their first rows (stored for every shard), and SD-schedule models
// draw from their training law before any calibration. Truths: the example oracle's and the
// two-word mixture's exact log-density differences, and the schedule proposal's exact law.
import assert from "node:assert/strict";
import { join } from "node:path";
import { estimateContrasts } from "../src/estimators/contrasts.ts";
import { ADAPT_PILOT_DISCOUNT, resolveOptions } from "../src/estimators/options.ts";
import { drawBlocks } from "../src/estimators/draws.ts";
import { logSnrCdf, logSnrInterval, logSnrWeight } from "../src/numerics/log-snr.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { PROFILE_REFIT_SHARE, SELF_FIT_SHARE } from "../src/numerics/proposal.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { withMembers } from "../src/models/denoiser.ts";
import { removeWord } from "../src/text/prompt.ts";
import { relationStudy } from "../src/studies/relations.ts";
import {
  CALIBRATION_ADAPT_MIN_SAMPLES,
  studyProfilePlan,
} from "../src/studies/self-calibration.ts";
import { readResults } from "../src/studies/results-file.ts";
import { mergeResults } from "../src/studies/merge.ts";
import { mixtureItems } from "./self-calibration-rows.ts";

const WIDE = { loc: 1, scale: 2, clip: 5 };
const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const variance = (v: readonly number[]) =>
  v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1);

/** The example oracle's total and three words on shared draws, with their exact values. */
function exampleCase() {
  const model = exampleOracle();
  const x = model.sample(EXAMPLE_PROMPT, { seed: 1 });
  const pairs = [
    [EXAMPLE_PROMPT, ""],
    ...["red", "circle", "left"].map((w) => [EXAMPLE_PROMPT, removeWord(EXAMPLE_PROMPT, w)]),
  ];
  const prompts = [...new Set(pairs.flat())];
  const plan = {
    prompts,
    contrasts: pairs.map(([a, b]) => ({ with: prompts.indexOf(a), without: prompts.indexOf(b) })),
  };
  const exact = pairs.map(([a, b]) => model.logDensity(x, a) - model.logDensity(x, b));
  return { model, x, plan, exact };
}

/** A profile of the oracle putting half its mass on each side of α = 1 (over the WIDE interval). */
function halvesProfile(model: { readonly name: string; readonly shape: readonly number[] }) {
  return {
    kind: "infodiff.logSnrProfile",
    version: 1,
    model: { name: model.name, shape: [...model.shape] },
    edges: [-9, 1, 11],
    mass: [0.5, 0.5],
    calibration: {},
  } as const;
}

Deno.test("an adaptive query is unbiased: 300 seeds within 3 SE of the exact values, intervals cover", async () => {
  const { model, x, plan, exact } = exampleCase();
  const seeds = 300;
  const adaptive = plan.contrasts.map(() => [] as number[]);
  const covered = plan.contrasts.map(() => 0);
  let refits = 0;
  for (let seed = 0; seed < seeds; seed++) {
    const options = { samples: 100, seed, estimator: "standard", logSnr: WIDE } as const;
    const resolved = resolveOptions(model, options);
    const out = await estimateContrasts(model, x, plan, resolved);
    // a pilot of half (at most 50), itself split: 26 from the prior, 24 from a refit on them, then
    // 50 from a refit on all 50: the prior's weights are the logistic's 1/q(α) times the discount
    // (they count as that share of their draws in the estimate), the refitted rounds' are not
    assert.deepEqual(out.rounds, [26, 24, 50]);
    const logistic = (i: number) => logSnrWeight(out.draws.logSnr[i], resolved.logSnr);
    for (let i = 0; i < 26; i++) {
      assert.ok(Math.abs(out.draws.weight[i] / logistic(i) - ADAPT_PILOT_DISCOUNT) < 1e-9);
    }
    // (the prior again only where no contrast of the pilot was informative beyond 2 SE)
    const ratios = Array.from(
      { length: 50 },
      (_, i) => out.draws.weight[50 + i] / logistic(50 + i),
    );
    if (ratios.some((r) => Math.abs(r - (2 - ADAPT_PILOT_DISCOUNT)) > 0.01)) refits++;
    out.contrasts.forEach((c, k) => {
      adaptive[k].push(c.estimate.nats);
      const { low, high } = c.estimate.interval!;
      if (low <= exact[k] && exact[k] <= high) covered[k]++;
    });
  }
  adaptive.forEach((values, k) => {
    const se = Math.sqrt(variance(values) / seeds);
    assert.ok(
      Math.abs(mean(values) - exact[k]) <= 3 * se,
      `contrast ${k}: ${mean(values)} ± ${se} vs exact ${exact[k]}`,
    );
    assert.ok(covered[k] / seeds >= 0.9, `contrast ${k}: intervals cover ${covered[k]}/${seeds}`);
  });
  assert.ok(refits >= 0.9 * seeds, `the second round refitted for ${refits} of ${seeds} seeds`);
});

Deno.test("adaptation: only from the prior, shown by plan(), off on request", () => {
  const model = exampleOracle();
  const q = model.info(new Float32Array(3 * 16 * 16)).given(EXAMPLE_PROMPT);
  // the pilot weighs its share of the draws times the discount, the adapted round the rest
  // a pilot from the prior of 40 % of the budget or more is itself split in two
  assert.deepEqual(q.samples(100).plan("perToken").adapt, {
    pilot: 50,
    rest: 50,
    rounds: [26, 24, 50],
    pilotWeight: ADAPT_PILOT_DISCOUNT * 0.5,
    refitShare: SELF_FIT_SHARE,
  });
  assert.deepEqual(q.samples(400).plan("perToken").adapt, {
    pilot: 50,
    rest: 350,
    rounds: [50, 350],
    pilotWeight: ADAPT_PILOT_DISCOUNT * 0.125,
    refitShare: SELF_FIT_SHARE,
  });
  // the bounds: 48 pilot draws or more (94 draws), 40 % of the budget or more (125 draws)
  const roundsAt = (n: number) => q.samples(n).plan("perToken").adapt?.rounds;
  assert.deepEqual([92, 94, 125, 126].map(roundsAt), [
    [46, 46],
    [24, 24, 46],
    [26, 24, 75],
    [50, 76],
  ]);
  // too few draws to split, a named proposal, or adapt(false): every draw from the prior
  assert.equal(q.samples(30).plan("perToken").adapt, undefined);
  assert.equal(q.samples(100).proposal("logistic").plan("perToken").adapt, undefined);
  assert.equal(q.samples(100).adapt(false).plan("perToken").adapt, undefined);
  // asked for, from a named proposal or a profile too
  assert.equal(q.samples(100).proposal("logistic").adapt(true).plan("perToken").adapt?.pilot, 50);
  const profile = halvesProfile(model);
  // a pilot from a fitted profile refits with less of the logistic
  assert.deepEqual(q.samples(100).proposal(profile).adapt(true).plan("perToken").adapt, {
    pilot: 50,
    rest: 50,
    rounds: [50, 50],
    pilotWeight: ADAPT_PILOT_DISCOUNT * 0.5,
    refitShare: PROFILE_REFIT_SHARE,
  });
  assert.equal(q.samples(100).proposal(profile).plan("perToken").adapt, undefined);
  assert.deepEqual(q.samples(20).precision(0.01).plan("total").adapt, {
    pilot: 20,
    rest: "precision rounds",
    refitShare: SELF_FIT_SHARE,
  });
  assert.throws(
    () => resolveOptions(model, { adapt: "yes" as never }),
    /adapt must be true or false/,
  );
});

Deno.test("a refit keeps the logistic's share by where its pilot drew: 0.25 after a prior, 0.15 after a profile", async () => {
  const { model, x, plan } = exampleCase();
  const profile = halvesProfile(model);
  // the adapted round draws from (1 − λ)·refit + λ·logistic, so the logistic's density over the
  // round's q is at most 1/λ, and reaches it where the refit has no mass (a refit on 50 draws
  // leaves most of the interval empty); each weight also carries the round's share: (2 − d) for
  // the last round, d for a split pilot's refitted part (draws 26–49 after the prior)
  for (
    const [start, lambda, extra] of [
      ["prior", SELF_FIT_SHARE, {}],
      ["profile", PROFILE_REFIT_SHARE, { proposal: profile, adapt: true }],
    ] as const
  ) {
    const largest: number[] = [];
    for (let seed = 0; seed < 12; seed++) {
      const options = {
        samples: 100,
        seed,
        estimator: "standard",
        logSnr: WIDE,
        ...extra,
      } as const;
      const resolved = resolveOptions(model, options);
      const out = await estimateContrasts(model, x, plan, resolved);
      const split = start === "prior";
      assert.deepEqual(out.rounds, split ? [26, 24, 50] : [50, 50]);
      let most = 0;
      for (let i = split ? 26 : 50; i < 100; i++) {
        const scale = i < 50 ? ADAPT_PILOT_DISCOUNT : 2 - ADAPT_PILOT_DISCOUNT;
        const ratio = out.draws.weight[i] / logSnrWeight(out.draws.logSnr[i], resolved.logSnr);
        most = Math.max(most, ratio / scale);
      }
      largest.push(most);
    }
    assert.ok(largest.every((m) => m <= 1 / lambda + 1e-9), `${start}: ${largest}`);
    const reached = largest.filter((m) => m > 0.99 / lambda).length;
    assert.ok(reached >= 9, `${start}: 1/λ reached in ${reached} of 12 seeds (${largest})`);
  }
});

Deno.test("an SD-schedule model draws α uniformly over its trained timesteps (with 10 % logistic)", () => {
  // ten timesteps with uneven spacing; the cell of each reaches halfway to its neighbours
  const alphas = Float64Array.of(6, 4.5, 3.5, 2, 0.5, 0, -1, -2.5, -3, -5);
  const model = withMembers(exampleOracle(), {
    logSnrRange: { min: -5, max: 6 },
    schedule: { logSnr: alphas, length: alphas.length } as never,
  });
  const resolved = resolveOptions(model, { samples: 4000, design: "stratified" });
  assert.equal(resolved.proposal.kind, "schedule");
  const { min, max } = logSnrInterval(resolved.logSnr);
  const up = [...alphas].reverse();
  const edges = [
    min,
    ...up.slice(0, -1).map((a, i) => (a + up[i + 1]) / 2),
    max,
  ];
  const cellOf = (a: number) => edges.findIndex((e, i) => a >= e && a < (edges[i + 1] ?? Infinity));
  const counts = new Array(up.length).fill(0);
  for (const block of drawBlocks({ ...resolved, size: 1, blockSize: 4000, drawsPerLogSnr: 1 })) {
    for (const a of block.logSnr) counts[Math.min(up.length - 1, cellOf(a))]++;
  }
  // the exact law of each cell: 0.9 × (1/T, the end cells cut by the interval and renormalised)
  // + 0.1 × the logistic's mass
  const halfGaps = [(up[1] - up[0]) / 2, (up.at(-1)! - up.at(-2)!) / 2];
  const full = [up[0] - halfGaps[0], up.at(-1)! + halfGaps[1]];
  const kept = edges.map((_, i) =>
    i === 0
      ? (edges[1] - Math.max(min, full[0])) / (edges[1] - full[0])
      : i === up.length - 1
      ? (Math.min(max, full[1]) - edges[i]) / (full[1] - edges[i])
      : 1
  ).slice(0, up.length);
  const total = kept.reduce((s, k) => s + k, 0);
  counts.forEach((n, i) => {
    const p = 0.9 * kept[i] / total +
      0.1 * (logSnrCdf(edges[i + 1], resolved.logSnr) - logSnrCdf(edges[i], resolved.logSnr));
    // stratified draws vary less than binomial ones: 4 binomial SE is generous
    const se = Math.sqrt(4000 * p * (1 - p));
    assert.ok(Math.abs(n - 4000 * p) <= 4 * se, `cell ${i}: ${n} draws, expected ${4000 * p}`);
  });
});

for (const [samples, adapt] of [[24], [100], [100, true]] as [number, true?][]) {
  // at 24 draws every row draws from the prior or the profile alone; at 100 (the default) the
  // calibration rows adapt within the row from the prior and the rows after draw from the profile
  // alone; asked (adapt: true), the rows after adapt within the row from the profile too
  const adapting = samples >= CALIBRATION_ADAPT_MIN_SAMPLES || adapt === true;
  const asked = adapt ? ", rows adapting as asked" : "";
  Deno.test(`a study calibrates itself on its first rows, keeps their estimates and stays unbiased (${samples} draws${asked})`, async () => {
    const { model, items, exact, loadImage } = mixtureItems(30);
    const errors = { calibration: [] as number[], fitted: [] as number[] };
    for (let seed = 0; seed < 80; seed++) {
      const store = await Deno.makeTempDir();
      const results = join(store, "rel.jsonl");
      const options = {
        samples,
        seed,
        ...(adapt ? { adapt } : {}),
        estimator: "standard",
        // wide enough that the integral over α is the log-density difference to within its errors
        logSnr: WIDE,
        loadImage,
      } as const;
      const study = await relationStudy(model, items, {
        ...options,
        results,
        calibration: { store },
      });
      assert.equal(study.items.length, 30);
      const { header } = await readResults(results);
      const settings = header!.settings as Record<string, Record<string, unknown>>;
      // the rows after calibration draw from the fitted profile, recorded in the header with the
      // profile's own record: fitted by the study on its first 12 rows, from the prior
      assert.equal(settings.proposal.kind, "fitted");
      assert.equal((settings.calibration.rows as string[]).length, 12);
      assert.deepEqual(
        settings.calibration.prior,
        adapting
          ? {
            proposal: "logistic",
            // as a query: its pilot of half the draws split, 26 from the prior, 24 refitted
            adapt: {
              pilot: 50,
              pilotDiscount: ADAPT_PILOT_DISCOUNT,
              refitShare: SELF_FIT_SHARE,
              splitPilot: true,
            },
          }
          : { proposal: "logistic" },
      );
      // asked, the rows' pilots draw from the study's profile: their refits keep less of the
      // logistic; unasked, the rows draw from the profile alone
      assert.deepEqual(
        settings.adapt,
        adapt
          ? { pilot: 50, pilotDiscount: ADAPT_PILOT_DISCOUNT, refitShare: PROFILE_REFIT_SHARE }
          : undefined,
      );
      // every row kept, the calibration rows' own estimates too
      // a row's two options share its draws: their errors summed are one independent unit
      study.items.forEach((row, i) => {
        const error = row.options.reduce(
          (s, option, j) => s + row.nats[j]! - exact(row.image, option),
          0,
        );
        (i < 12 ? errors.calibration : errors.fitted).push(error);
      });
      // a later run finds the profile stored and calibrates nothing; rerun, the rows it was
      // fitted on draw as they did, so every row gets its numbers again
      const plan = await studyProfilePlan(
        model,
        { samples, logSnr: WIDE, ...(adapt ? { adapt } : {}) },
        { store },
        30,
      );
      assert.equal(plan.mode, "stored");
      assert.equal(plan.rowPilot, adapt ? 50 : undefined);
      if (seed === 0) {
        const again = await relationStudy(model, items, { ...options, calibration: { store } });
        assert.deepEqual(again.toJSON().items, study.toJSON().items);
      }
    }
    // every row's error against its exact values, independent across rows and seeds: their
    // mean is 0 within 3 SE, for the calibration rows and for the rows drawn from the profile (an
    // error in units of its own SE would not do: a low estimate comes with a low SE)
    for (const [kind, e] of Object.entries(errors)) {
      const se = Math.sqrt(variance(e) / e.length);
      assert.ok(Math.abs(mean(e)) <= 3 * se, `${kind}: mean error ${mean(e)} ± ${se}`);
    }
  });
}

/**
 * Three shards of a Slurm array of the mixture relation study (tests/self-calibration-rows.ts),
 * shards 1 and 2 started before shard 0, then merged; and the same study in one process with a
 * fresh cache. Returns the merged and the single file, and the store's files.
 */
async function slurmArray(samples: number) {
  const dir = await Deno.makeTempDir();
  const cache = join(dir, "cache");
  const script = new URL("./self-calibration-rows.ts", import.meta.url).pathname;
  const run = (env: Record<string, string>, out: string, shard = "auto") =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        script,
        "--samples",
        String(samples),
        "--shard",
        shard,
        "--out",
        out,
      ],
      env: { INFODIFF_CACHE: cache, NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const slurm = (id: number) => ({
    SLURM_ARRAY_TASK_ID: String(id),
    SLURM_ARRAY_TASK_MIN: "0",
    SLURM_ARRAY_TASK_COUNT: "3",
  });
  // shards 1 and 2 start first and must wait for shard 0's calibration
  const waiting = [1, 2].map((id) => run(slurm(id), join(dir, "shards")));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const outputs = [await run(slurm(0), join(dir, "shards")), ...await Promise.all(waiting)];
  for (const output of outputs) {
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  }
  const stored = [...Deno.readDirSync(join(cache, "profiles"))].map((e) => e.name);
  const files = [0, 1, 2].map((i) => join(dir, "shards", `shard-${i}-of-3.jsonl`));
  const headers = await Promise.all(files.map(async (f) => (await readResults(f)).header!));
  for (const header of headers) assert.deepEqual(header.settings, headers[0].settings);
  // the calibration rows are shard 0's: it holds the 12 of them and its share of the rest
  assert.equal(headers[0].items, 12 + Math.ceil((40 - 12) / 3));
  const merged = join(dir, "all.jsonl");
  assert.equal((await mergeResults(files, merged)).complete, true);
  const single = await run({ INFODIFF_CACHE: join(dir, "other") }, join(dir, "single"), "0/1");
  assert.equal(single.code, 0, new TextDecoder().decode(single.stderr));
  return {
    stored,
    all: await readResults(merged),
    one: await readResults(join(dir, "single", "shard-0-of-1.jsonl")),
  };
}

// at 100 draws the calibration rows adapt within the row: still one profile, and every row's
// numbers the same in shards as in one process
for (const samples of [24, 100]) {
  Deno.test(`shards under a Slurm array share one calibration: shard 0 fits, the others wait (${samples} draws)`, async () => {
    const { stored, all, one } = await slurmArray(samples);
    assert.equal(stored.length, 1, `one profile for the three shards: ${stored}`);
    assert.match(stored[0], /^[0-9a-f]{64}\.json$/);
    const settings = all.header!.settings as {
      proposal: { kind: string };
      calibration: { prior: { adapt?: { pilot: number } } };
      adapt?: { pilot: number };
    };
    assert.equal(settings.proposal.kind, "fitted");
    // the calibration rows adapt at 100 draws; the rows after draw from the profile alone
    assert.equal(
      settings.calibration.prior.adapt?.pilot,
      samples >= CALIBRATION_ADAPT_MIN_SAMPLES ? 50 : undefined,
    );
    assert.equal(settings.adapt, undefined);
    // one process with its own, fresh cache fits the same profile and gives every row the same
    // numbers (each row has its own draws; the profile is a deterministic function of the rows)
    assert.deepEqual(one.header!.settings, all.header!.settings);
    assert.equal(all.records.size, 40);
    for (const [id, record] of one.records) assert.deepEqual(all.records.get(id), record, id);
  });
}

Deno.test("a calibration that finds no information: the shards and a rerun draw from the prior", async () => {
  // 4 draws: no contrast beyond 2 SE, so shard 0 leaves a marker for this study, not a profile
  const { stored, all, one } = await slurmArray(4);
  assert.equal(stored.length, 1);
  assert.match(stored[0], /^[0-9a-f]{64}\.none-[0-9a-f]{16}\.json$/);
  const settings = all.header!.settings as { proposal: unknown; calibration: unknown };
  assert.equal(settings.proposal, "logistic");
  assert.deepEqual((settings.calibration as { noInformation: boolean }).noInformation, true);
  assert.deepEqual(one.header!.settings, all.header!.settings);
  for (const [id, record] of one.records) assert.deepEqual(all.records.get(id), record, id);
});

Deno.test("a study's dry run says where α comes from and what its calibration spends", async () => {
  const { main } = await import("../src/cli/main.ts");
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    join(dir, "rows.json"),
    JSON.stringify([{ image: "x.png", prompt: "a red circle", wordA: "red", wordB: "circle" }]),
  );
  const run = async (...extra: string[]) => {
    const lines: string[] = [];
    const code = await main([
      "pid-study",
      "--model",
      "fixtures/models/sd-int32-int64t",
      "--device",
      "cpu",
      "--rows",
      join(dir, "rows.json"),
      "--results",
      join(dir, "pid.jsonl"),
      "--dry-run",
      ...extra,
    ], (line) => lines.push(line));
    return { code, text: lines.join("\n") };
  };
  const plan = await run();
  assert.equal(plan.code, 0, plan.text);
  // an SD-schedule export without a profile: its first rows calibrate from the schedule prior,
  // adapting within the row as a query does; every other row draws from the profile alone
  assert.match(
    plan.text,
    /^α: the first 12 rows draw from the prior \{"proposal":\{"kind":"schedule","lambda":0\.1,"timesteps":1000\},"adapt":\{"pilot":50,"pilotDiscount":0\.8,"refitShare":0\.25,"splitPilot":true\}\} \(their estimates kept\), then every other row from the profile fitted on their draws, stored at .*profiles\/[0-9a-f]{64}-[0-9a-f]{16}\.json \(shards other than 0 wait for it\)$/,
  );
  // below 100 draws the calibration rows draw from the prior alone
  assert.match(
    (await run("--samples", "60")).text,
    /^α: the first 12 rows draw from the prior \{"proposal":\{"kind":"schedule","lambda":0\.1,"timesteps":1000\}\} \(their estimates kept\), then every other row from the profile fitted on their draws, stored at/,
  );
  // off: every row from the prior, adapting within its 100 draws
  assert.match(
    (await run("--calibration-rows", "off")).text,
    /"adapt":\{"pilot":50,"pilotDiscount":0\.\d+,"refitShare":0\.25,"splitPilot":true\}\}; calibration off$/,
  );
  assert.match((await run("--calibration-rows", "3")).text, /^α: the first 3 rows/);
  await assert.rejects(() => run("--calibration-rows", "0"), /--calibration-rows expects/);
  // a dry run runs nothing
  await assert.rejects(() => Deno.stat(join(dir, "pid.jsonl")), Deno.errors.NotFound);
});

Deno.test("the profile store: the first writer wins, a waiting shard gives up with the file's name", async () => {
  const { storeProfile, readStoredProfile, waitForStoredProfile, storedProfilePath } = await import(
    "../src/models/profile-file.ts"
  );
  const { ModelLoadError } = await import("../src/errors.ts");
  const dir = await Deno.makeTempDir();
  const path = storedProfilePath({ name: "m", backend: "x", sha256: "0f".repeat(32) }, dir)!;
  const profile = (mass: number[]) => ({
    kind: "infodiff.logSnrProfile" as const,
    version: 1 as const,
    model: { name: "m", shape: [1, 1, 1] },
    edges: [0, 1, 2],
    mass,
    calibration: {},
  });
  assert.equal(await readStoredProfile(path), undefined);
  // two calibrations of one model at once: both end on the first one stored
  const [a, b] = await Promise.all([
    storeProfile(path, profile([0.25, 0.75])),
    storeProfile(path, profile([0.5, 0.5])),
  ]);
  assert.deepEqual(a.mass, b.mass);
  assert.deepEqual((await readStoredProfile(path))!.mass, a.mass);
  assert.deepEqual((await waitForStoredProfile(path, { timeoutMs: 10 }))!.mass, a.mass);
  // no temporary file is left beside it
  assert.deepEqual([...Deno.readDirSync(join(path, ".."))].map((e) => e.name), [
    `${"0f".repeat(32)}.json`,
  ]);
  const missing = join(dir, "profiles", "none.json");
  await assert.rejects(
    () => waitForStoredProfile(missing, { timeoutMs: 30, pollMs: 10 }),
    (e: Error) => e instanceof ModelLoadError && e.message.includes(missing),
  );
  // a calibration that found nothing leaves a marker: the wait ends without a profile
  const marker = join(dir, "none.json");
  await Deno.writeTextFile(marker, "{}");
  assert.equal(await waitForStoredProfile(missing, { timeoutMs: 30, marker }), undefined);
  await Deno.writeTextFile(missing, "{}");
  await assert.rejects(() => readStoredProfile(missing), ModelLoadError);
});

Deno.test("a resumed study takes its profile from its results file: no calibration row runs again", async () => {
  const { model, items, loadImage } = mixtureItems(24);
  const dir = await Deno.makeTempDir();
  const results = join(dir, "rel.jsonl");
  const options = {
    samples: 24,
    estimator: "standard" as const,
    logSnr: WIDE,
    loadImage,
    results,
    calibration: { store: join(dir, "store") },
  };
  const first = await relationStudy(model, items, options);
  assert.equal(
    ((await readResults(results)).header!.settings.proposal as { kind: string }).kind,
    "fitted",
  );
  // the store is gone (another machine, a cleared cache): the header holds what the rows drew from
  await Deno.remove(join(dir, "store"), { recursive: true });
  const broken = { ...model, predictNoise: () => Promise.reject(new Error("recomputed")) };
  const again = await relationStudy(broken, items, options);
  assert.equal(again.resumed, 24);
  assert.deepEqual(again.toJSON().items, first.toJSON().items);
});

Deno.test("a stored profile fitted over another trained range is not read: the study fits its own", async () => {
  // flow models' trained range changed on 2026-12-06 (the training law's bulk, not the grid): a
  // profile a study stored before is over other bins and another law, and was refused by name
  const { flowOracle } = await import("../src/models/flow-oracle.ts");
  const { storeProfile, storedProfilePath } = await import("../src/models/profile-file.ts");
  const { modelIdentity } = await import("../src/models/denoiser.ts");
  const model = flowOracle({
    shape: [1, 1, 2],
    components: [{ words: ["red"], mean: [1, -1], variance: 0.2 }, {
      words: ["blue"],
      mean: [-1, 1],
      variance: 0.3,
    }],
  });
  const store = await Deno.makeTempDir();
  const identity = await modelIdentity(model);
  const legacy = storedProfilePath(identity, store)!;
  const current = storedProfilePath(identity, store, model.logSnrRange)!;
  assert.notEqual(legacy, current);
  const profile = (range: { min: number; max: number }) => ({
    kind: "infodiff.logSnrProfile" as const,
    version: 1 as const,
    model: { name: model.name, shape: [...model.shape], logSnrRange: range },
    edges: [range.min, 0, range.max],
    mass: [0.5, 0.5],
    calibration: {},
  });
  await storeProfile(legacy, profile({ min: -13.8, max: 13.8 }));
  const stale = await studyProfilePlan(model, { samples: 20 }, { store }, 30);
  assert.equal(stale.mode, "calibrate");
  assert.equal(stale.path, current);
  // an old file over this model's own range still serves
  await Deno.remove(legacy);
  await storeProfile(legacy, profile(model.logSnrRange!));
  const kept = await studyProfilePlan(model, { samples: 20 }, { store }, 30);
  assert.equal(kept.mode, "stored");
  assert.equal(kept.path, legacy);
  // and a file under the range's own name comes first
  await storeProfile(current, profile(model.logSnrRange!));
  assert.equal((await studyProfilePlan(model, { samples: 20 }, { store }, 30)).path, current);
});
