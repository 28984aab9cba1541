/**
 * Head to head with the reference implementation (issue 26, part 6): the wall time until one
 * 10-word `perToken` reaches the standard error that the reference's per-word estimator
 * (kxh001/Info-Decomp's eval_itd.py, `cmi`, its defaults: 100 i.i.d. logistic(1, 2) log-SNR
 * draws clipped at 4, one ε each, rows batched 10 at a time, on diffusers + PyTorch;
 * tools/headtohead.py runs it from the reference's own code) reaches at its default draws —
 * infodiff as shipped (default design and proposal, adapting from 40 draws), on onnxruntime-node —
 * on the same network and weights, the same latent, the same prompts and 2 threads on each side.
 *
 *   bash tools/python-env.sh && bash tools/reference-env.sh        # once
 *   out/venv-ref/bin/python tools/headtohead.py build-sd15 out/headtohead/sd15   # ~2 min, 3.4 GB
 *   out/venv-ref/bin/python tools/headtohead.py build-tiny out/headtohead/tiny-sd
 *
 * The runs of docs/performance.md's head-to-head (2026-12-05/06), in this order:
 *
 *   nice -n 5 deno run -A bench/headtohead.ts tiny --pilot-seeds 3 --seeds 3 --reference-runs 3
 *   nice -n 5 deno run -A bench/headtohead.ts tiny --more 60,80 --seeds 3 --timing-calls 10
 *   nice -n 5 deno run -A bench/headtohead.ts tiny --more 108 --seeds 3 --timing-calls 10
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --start              # the reference's full run
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --more 100,40 --seeds 1 --timing-calls 3
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --more 60 --seeds 2 --timing-calls 3
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --more 80 --seeds 2 --timing-calls 3
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --more 100 --seeds 2 --timing-calls 5
 *   deno run -A bench/headtohead.ts sd15 --summary     # the figures again from the runs file
 *
 * Re-measured 2026-12-06/07 with the adaptive pilot weighing less (fresh runs files):
 *
 *   nice -n 5 deno run -A bench/headtohead.ts tiny --pilot-seeds 3 --seeds 3 --reference-runs 3
 *   nice -n 5 deno run -A bench/headtohead.ts tiny --more 114 --seeds 3 --timing-calls 10
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --start
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --more 100 --seeds 2 --timing-calls 5
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --more 80 --seeds 2 --timing-calls 3
 *
 * Re-measured 2026-12-07 with a query's pilot split (each runs file cut to the reference's full
 * runs, the earlier infodiff runs and timed slices set aside):
 *
 *   nice -n 5 deno run -A bench/headtohead.ts tiny --more 114 --seeds 3 --timing-calls 10
 *   nice -n 5 deno run -A bench/headtohead.ts sd15 --more 100 --seeds 2 --timing-calls 5
 *   nice -n 5 deno run -A bench/headtohead.ts tiny --more 100 --seeds 3 --timing-calls 10
 *
 * Networks: `tiny` (a tiny diffusers StableDiffusionPipeline, 32² latents, 256² px) and `sd15`
 * (SD 1.5's UNet with random weights, 8² latents, 64² px: the smallest its three downsamplings
 * allow, and at 2 CPU threads still 3–3.6 s per PyTorch call of 30 items when the machine is quiet).
 *
 * Each run is appended to out/headtohead/results/<network>/runs.jsonl as it ends, so `--summary`
 * re-makes the figures (summary.json) without running anything. The default schedule, interleaved
 * so that a change of the shared machine's load falls on both sides: the reference's full run
 * (seed 42, eval_itd.py's), infodiff's pilot runs (`--pilot-samples`, seeds 0, …) that predict
 * the draws each word needs by SE ∝ 1/√draws, then per seed (101, …) infodiff at the median
 * word's and the worst word's predicted draws, a timed slice of the reference's calls
 * (`--timing-calls`) and its further full runs (seeds 43, …); a budget that misses is raised once.
 * `--start` and `--more` run parts of it. The target of each word is the root mean square over the
 * reference's full runs of its SE (the i.i.d. standard error of its 100 per-draw terms,
 * tools/headtohead.py); infodiff's SE at a budget is the root mean square over its seeds of the
 * SE infodiff reports (what `precision()` stops on). The summary gives, per budget, the median
 * word's and the worst word's SE over its target, wall and CPU seconds, and the ratios; with 3
 * seeds or more also the seeds' spread of each estimate over its SE.
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { loadModel } from "../src/query/load-model.ts";

/** The ten-word prompt of both sides ("a" twice: each occurrence is its own word). */
const PROMPT = "a red circle to the left of a blue square";
/** CPU threads on each side: onnxruntime's intra-op threads, torch.set_num_threads. */
const THREADS = 2;

/** A network of the head-to-head: its folders, the image size both sides use and the image. */
interface Network {
  readonly name: string;
  /** the folder tools/headtohead.py built (the reference reads it) */
  readonly dir: string;
  /** the ONNX export infodiff loads */
  readonly onnx: string;
  /** image side in pixels (latent side ÷ 8) */
  readonly resolution: number;
  readonly image: string;
}

const NETWORKS: Record<string, Network> = {
  sd15: {
    name: "sd15",
    dir: "out/headtohead/sd15",
    onnx: "out/headtohead/sd15",
    resolution: 64,
    image: "fixtures/images/test-64.png",
  },
  tiny: {
    name: "tiny",
    dir: "out/headtohead/tiny-sd",
    onnx: "out/headtohead/tiny-sd/onnx",
    resolution: 256,
    image: "fixtures/images/test-64.png",
  },
};

interface WordSe {
  readonly word?: string;
  readonly nats: number;
  readonly se: number;
}

interface ReferenceRun {
  readonly kind: "reference";
  readonly seed: number;
  readonly seconds: number;
  readonly unetCalls: number;
  readonly itemsPerCall: number;
  readonly orthogonal: readonly WordSe[];
  readonly loadavg: readonly number[];
  readonly [key: string]: unknown;
}

interface TimingRun {
  readonly kind: "reference-timing";
  readonly calls: number;
  readonly secondsPerCall: number;
  readonly cpuSeconds?: number;
  readonly loadavg: readonly number[];
}

interface InfodiffRun {
  readonly kind: "infodiff";
  readonly samples: number;
  readonly seed: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly loadSeconds: number;
  readonly unetCalls: number;
  readonly unetItems: number;
  readonly unetSeconds: number;
  readonly batchSize: number;
  readonly proposal: unknown;
  readonly adapt: unknown;
  readonly words: readonly WordSe[];
  readonly total: WordSe;
  readonly loadavg: readonly number[];
}

type Run = ReferenceRun | TimingRun | InfodiffRun;

const PYTHON = "out/venv-ref/bin/python";

function folderOf(net: Network): string {
  return `out/headtohead/results/${net.name}`;
}

/**
 * The latent both sides use (the VAE's posterior mean × scaling factor, as infodiff prepares the
 * image) and the prompts (infodiff's contexts), written for the reference.
 */
async function prepare(net: Network): Promise<string> {
  const model = await loadModel(net.onnx, {
    device: "cpu",
    threads: THREADS,
    resolution: net.resolution,
  });
  try {
    const latent = await model.prepare(net.image);
    const plan = model.info(latent).given(PROMPT).plan("perToken");
    const contexts = plan.contrasts.slice(1).map((c) => c.without);
    if (contexts.length !== 10) throw new Error(`expected 10 words, got ${contexts.length}`);
    const folder = folderOf(net);
    await Deno.mkdir(folder, { recursive: true });
    await Deno.writeFile(`${folder}/latent.f32`, new Uint8Array(latent.buffer));
    const inputs = `${folder}/inputs.json`;
    await Deno.writeTextFile(
      inputs,
      JSON.stringify({
        prompt: PROMPT,
        contexts,
        latent: `${folder}/latent.f32`,
        shape: model.shape,
      }),
    );
    return inputs;
  } finally {
    await model.dispose();
  }
}

async function readLatent(net: Network): Promise<Float32Array> {
  const bytes = await Deno.readFile(`${folderOf(net)}/latent.f32`);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** Runs tools/headtohead.py's reference (a full run, or `calls` timed calls). */
async function referenceRun(net: Network, seed: number, calls = 0): Promise<Run> {
  const args = [
    "tools/headtohead.py",
    "reference",
    net.dir,
    "--inputs",
    `${folderOf(net)}/inputs.json`,
    "--seed",
    String(seed),
    "--threads",
    String(THREADS),
    ...(calls ? ["--calls", String(calls)] : []),
  ];
  const loadavg = Deno.loadavg();
  const out = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`reference run failed:\n${new TextDecoder().decode(out.stderr).slice(-3000)}`);
  }
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const json = JSON.parse(lines[lines.length - 1]);
  return calls
    ? {
      kind: "reference-timing",
      calls,
      secondsPerCall: json.secondsPerCall,
      cpuSeconds: json.cpuSeconds,
      loadavg,
    }
    : { kind: "reference", ...json, loadavg };
}

/** One 10-word perToken as shipped at `samples` draws, timed from the query to its result. */
async function infodiffRun(net: Network, samples: number, seed: number): Promise<InfodiffRun> {
  const loading = performance.now();
  const model = await loadModel(net.onnx, {
    device: "cpu",
    threads: THREADS,
    resolution: net.resolution,
  });
  const loadSeconds = (performance.now() - loading) / 1000;
  try {
    const query = model.info(await readLatent(net)).given(PROMPT).samples(samples).seed(seed);
    const plan = query.plan("perToken");
    const before = model.stats;
    const loadavg = Deno.loadavg();
    const started = performance.now();
    const cpu = process.cpuUsage();
    const result = await query.perToken();
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const after = model.stats;
    return {
      kind: "infodiff",
      samples,
      seed,
      seconds,
      cpuSeconds: (used.user + used.system) / 1e6,
      loadSeconds,
      unetCalls: after.unetCalls - before.unetCalls,
      unetItems: after.unetItems - before.unetItems,
      unetSeconds: (after.unetMs - before.unetMs) / 1000,
      batchSize: plan.batchSize,
      proposal: plan.proposal,
      adapt: plan.adapt,
      words: result.tokens.map((t) => ({ word: t.word, nats: t.estimate.nats, se: t.estimate.se })),
      total: { nats: result.total.nats, se: result.total.se },
      loadavg,
    };
  } finally {
    await model.dispose();
  }
}

async function append(net: Network, run: Run): Promise<void> {
  await Deno.writeTextFile(`${folderOf(net)}/runs.jsonl`, JSON.stringify(run) + "\n", {
    append: true,
  });
  console.error(
    `${run.kind} ${"samples" in run ? `N=${run.samples} ` : ""}` +
      `${
        "seconds" in run ? `${run.seconds.toFixed(1)} s` : `${run.secondsPerCall.toFixed(2)} s/call`
      }` +
      ` (load ${run.loadavg.map((l) => l.toFixed(1)).join(" ")})`,
  );
}

async function readRuns(net: Network): Promise<Run[]> {
  const text = await Deno.readTextFile(`${folderOf(net)}/runs.jsonl`);
  return text.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const rms = (xs: readonly number[]): number =>
  Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / xs.length);

/** Standard deviation (n − 1) of a few values: the seed-to-seed spread of an estimate. */
const spread = (xs: readonly number[]): number => {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
};

/** Each word's target: the root mean square of the reference's SEs over its full runs. */
function targets(runs: readonly ReferenceRun[]): number[] {
  return runs[0].orthogonal.map((_, w) => rms(runs.map((r) => r.orthogonal[w].se)));
}

/**
 * The draws each word needs for its target, from runs at `samples` draws (their SEs' root mean
 * square; SE ∝ 1/√draws), and the median word's and the worst word's, rounded up to even
 * (antithetic pairs).
 *
 * @example
 * ```ts
 * import { drawsNeeded } from "./headtohead.ts";
 * const run = { samples: 100, words: [{ nats: 1, se: 0.1 }, { nats: 1, se: 0.2 }, { nats: 1, se: 0.05 }] };
 * const need = drawsNeeded([run], [0.1, 0.1, 0.1]);
 * console.assert(need.median === 100 && need.max === 400 && Math.abs(need.perWord[2] - 25) < 1e-9);
 * ```
 */
export function drawsNeeded(
  runs: readonly { readonly samples: number; readonly words: readonly WordSe[] }[],
  target: readonly number[],
): { perWord: number[]; median: number; max: number } {
  const perWord = target.map((t, i) =>
    rms(runs.map((r) => Math.sqrt(r.samples) * r.words[i].se)) ** 2 / t ** 2
  );
  const even = (n: number) => Math.max(2, 2 * Math.ceil(n / 2 - 1e-9));
  return { perWord, median: even(median(perWord)), max: even(Math.max(...perWord)) };
}

/** Per word, the root mean square over runs of SE / target. */
function seOverTarget(runs: readonly InfodiffRun[], target: readonly number[]): number[] {
  return target.map((t, i) => rms(runs.map((r) => r.words[i].se)) / t);
}

/** The figures: per side wall time, calls, s/call, SE reached, and the ratios. */
function summarize(runs: readonly Run[]): Record<string, unknown> {
  const full = runs.filter((r): r is ReferenceRun => r.kind === "reference");
  const timing = runs.filter((r): r is TimingRun => r.kind === "reference-timing");
  const ours = runs.filter((r): r is InfodiffRun => r.kind === "infodiff");
  const target = targets(full);
  const refPerCall = [
    ...full.map((r) => r.seconds / r.unetCalls),
    ...timing.map((r) => r.secondsPerCall),
  ];
  const refCalls = full[0].unetCalls;
  // CPU seconds per call (both processes run 2 threads; less moved by other processes' load)
  const refCpuPerCall = [
    ...full.flatMap((r) => typeof r.cpuSeconds === "number" ? [r.cpuSeconds / r.unetCalls] : []),
    ...timing.flatMap((r) => r.cpuSeconds === undefined ? [] : [r.cpuSeconds / r.calls]),
  ];
  const budgets = [...new Set(ours.map((r) => r.samples))].sort((a, b) => a - b);
  const at = budgets.map((n) => {
    const rs = ours.filter((r) => r.samples === n);
    // a seed run again (for its timing) draws the same: one estimate per seed
    const estimates = rs.filter((r, k) => rs.findIndex((x) => x.seed === r.seed) === k);
    const ratios = seOverTarget(estimates, target);
    const seconds = rs.map((r) => r.seconds);
    // interleaved pairs: a run and the timed slice of the reference right after it
    const pairs = runs.flatMap((r, k) => {
      const next = runs[k + 1];
      return r.kind === "infodiff" && r.samples === n && next?.kind === "reference-timing"
        ? [{
          wall: (next.secondsPerCall * refCalls) / r.seconds,
          cpu: next.cpuSeconds === undefined
            ? undefined
            : (next.cpuSeconds / next.calls * refCalls) / r.cpuSeconds,
          loadavg: r.loadavg[0],
        }]
        : [];
    });
    return {
      samples: n,
      seeds: rs.map((r) => r.seed),
      seconds,
      loadavg: rs.map((r) => r.loadavg[0]),
      unetCalls: rs[0].unetCalls,
      unetItems: rs[0].unetItems,
      itemsPerWord: rs[0].unetItems / target.length,
      secondsPerCall: rs.map((r) => r.seconds / r.unetCalls),
      secondsPerItemInRun: rs.map((r) => r.unetSeconds / r.unetItems),
      adapt: rs[0].adapt,
      medianWordSeOverTarget: median(ratios),
      worstWordSeOverTarget: Math.max(...ratios),
      // with 3 seeds or more: the seed-to-seed spread of each word's estimate against its SE
      spreadOverSe: estimates.length >= 3
        ? median(
          target.map((_, i) =>
            spread(estimates.map((r) => r.words[i].nats)) /
            rms(estimates.map((r) => r.words[i].se))
          ),
        )
        : undefined,
      cpuSeconds: rs.map((r) => r.cpuSeconds),
      pairs,
      // the reference's wall time at its median s/call over every measurement, against the
      // median run (the machine's load moves both: the pairs are the fairer figure)
      wallRatio: (median(refPerCall) * refCalls) / median(seconds),
      cpuRatio: refCpuPerCall.length
        ? (median(refCpuPerCall) * refCalls) / median(rs.map((r) => r.cpuSeconds))
        : undefined,
    };
  });
  const first = (ok: (b: (typeof at)[number]) => boolean) => at.find(ok);
  return {
    reference: {
      runs: full.map((r) => ({ seed: r.seed, seconds: r.seconds, loadavg: r.loadavg[0] })),
      unetCalls: refCalls,
      itemsPerCall: full[0].itemsPerCall,
      itemsPerWord: (refCalls * full[0].itemsPerCall) / target.length,
      secondsPerCall: refPerCall,
      secondsPerItem: refPerCall.map((s) => s / full[0].itemsPerCall),
      cpuSecondsPerCall: refCpuPerCall,
      logSnrRange: full.map((r) => r.logSnrRange),
      words: full[0].orthogonal.map((_, i) => ({
        nats: full.map((r) => r.orthogonal[i].nats),
        se: full.map((r) => r.orthogonal[i].se),
        target: target[i],
        spreadOverSe: full.length >= 3
          ? spread(full.map((r) => r.orthogonal[i].nats)) / target[i]
          : undefined,
      })),
      versions: full[0].versions,
    },
    infodiff: at,
    medianWord: first((b) => b.medianWordSeOverTarget <= 1),
    everyWord: first((b) => b.worstWordSeOverTarget <= 1),
  };
}

async function versions(): Promise<Record<string, string>> {
  const ort = await import("onnxruntime-node");
  const env = ort.env as unknown as { versions?: Record<string, string> };
  return { deno: Deno.version.deno, v8: Deno.version.v8, ...(env.versions ?? {}) };
}

/** The runs so far, by kind. */
async function runsSoFar(net: Network) {
  const runs = await readRuns(net);
  return {
    full: runs.filter((r): r is ReferenceRun => r.kind === "reference"),
    ours: runs.filter((r): r is InfodiffRun => r.kind === "infodiff"),
  };
}

/**
 * The schedule: the reference's first full run and infodiff's pilot runs, then per seed infodiff
 * at the median word's and the worst word's predicted draws (a timed slice of the reference and
 * its further full runs in between); a budget whose seeds miss the target is raised once, by
 * (SE / target)².
 */
async function schedule(net: Network, o: {
  pilotSamples: number;
  pilotSeeds: number;
  seeds: number;
  referenceRuns: number;
  timingCalls: number;
}): Promise<void> {
  await prepare(net);
  await Deno.writeTextFile(`${folderOf(net)}/runs.jsonl`, "");
  await append(net, await referenceRun(net, 42));
  for (let s = 0; s < o.pilotSeeds; s++) {
    await append(net, await infodiffRun(net, o.pilotSamples, s));
  }
  let { full, ours } = await runsSoFar(net);
  const need = drawsNeeded(ours, targets(full));
  console.error(`draws for the median word ${need.median}, for every word ${need.max}`);
  let referenceDone = 1;
  const verify = async (budgets: number[]) => {
    for (let s = 1; s <= o.seeds; s++) {
      for (const n of budgets) await append(net, await infodiffRun(net, n, 100 + s));
      if (o.timingCalls) await append(net, await referenceRun(net, 42 + s, o.timingCalls));
      if (referenceDone < o.referenceRuns) {
        await append(net, await referenceRun(net, 42 + referenceDone++));
      }
    }
  };
  await verify([...new Set([need.median, need.max])]);
  ({ full, ours } = await runsSoFar(net));
  const target = targets(full);
  const raised = (n: number, pick: (r: number[]) => number) => {
    const r = pick(seOverTarget(ours.filter((x) => x.samples === n), target));
    return r > 1 ? 2 * Math.ceil((n * r * r) / 2) : undefined;
  };
  const again = [raised(need.median, median), raised(need.max, (r) => Math.max(...r))]
    .filter((n): n is number => n !== undefined && !ours.some((x) => x.samples === n));
  if (again.length) {
    console.error(`target missed: raising to ${again.join(", ")} draws`);
    await verify([...new Set(again)]);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      "pilot-samples": { type: "string", default: "40" },
      "pilot-seeds": { type: "string", default: "2" },
      seeds: { type: "string", default: "2" },
      "reference-runs": { type: "string", default: "1" },
      "timing-calls": { type: "string", default: "0" },
      summary: { type: "boolean", default: false },
      more: { type: "string" },
      start: { type: "boolean", default: false },
    },
  });
  const net = NETWORKS[positionals[0]];
  if (!net) throw new Error(`name a network: ${Object.keys(NETWORKS).join(" or ")}`);
  if (values.start) {
    // a fresh runs file with the reference's full run only (then --more)
    await prepare(net);
    await Deno.writeTextFile(`${folderOf(net)}/runs.jsonl`, "");
    await append(net, await referenceRun(net, 42));
  } else if (values.more) {
    // more runs into the same file: infodiff at these budgets (seeds 101, …), each followed by a
    // timed slice of the reference when --timing-calls is set
    for (let s = 1; s <= Number(values.seeds); s++) {
      for (const n of values.more.split(",").map(Number)) {
        await append(net, await infodiffRun(net, n, 100 + s));
      }
      const calls = Number(values["timing-calls"]);
      if (calls) await append(net, await referenceRun(net, 42 + s, calls));
    }
  } else if (!values.summary) {
    await schedule(net, {
      pilotSamples: Number(values["pilot-samples"]),
      pilotSeeds: Number(values["pilot-seeds"]),
      seeds: Number(values.seeds),
      referenceRuns: Number(values["reference-runs"]),
      timingCalls: Number(values["timing-calls"]),
    });
  }
  const summary = { network: net, versions: await versions(), ...summarize(await readRuns(net)) };
  await Deno.writeTextFile(`${folderOf(net)}/summary.json`, JSON.stringify(summary, null, 1));
  console.log(JSON.stringify(summary, null, 1));
}

if (import.meta.main) await main();
