/**
 * The commands of the `infodiff` command line, one table: each has its options, its usage with an
 * example, and what it runs. Every argument is checked before a model loads.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import {
  checkEstimator,
  checkSamples,
  type EstimatorName,
  ESTIMATORS,
} from "../estimators/options.ts";
import { checkSeed } from "../numerics/random.ts";
import { DEVICES } from "../models/onnx/onnx-model.ts";
import { loadModel, type OnnxModel } from "../query/load-model.ts";
import { formatMergeReport, mergeResults } from "../studies/merge.ts";
import { writeStudyReport } from "../plots/report.ts";
import { runDemo } from "./demo.ts";
import { toPixels } from "../generation/ddim.ts";
import { arrayToNpy } from "../images/npy.ts";
import { chwToRgb, rgbToPng, writePng } from "../images/png.ts";
import { runInfo, withQuery } from "./info.ts";
import { checkOutputFile } from "./outputs.ts";
import {
  choiceOf,
  type Command,
  deviceOptions,
  NUMBER,
  numberOption,
  PIPELINE_OPTIONS,
  PIPELINE_USAGE,
  pipelineOptions,
  precisionOption,
  required,
  type Values,
} from "./command.ts";
import { STUDY_COMMANDS } from "./study-commands.ts";
import { parseHubSpec } from "../models/hub/cache.ts";
import { resolveHubModel } from "../models/hub/resolve.ts";
import { progressReporter } from "./progress.ts";

export type { Command, Values } from "./command.ts";

const string = { type: "string" } as const;
const boolean = { type: "boolean" } as const;

const device = choiceOf(DEVICES, "device");
const MAP_SCALES = ["shared", "each"] as const;

/** What every command that queries one image takes. */
const QUERY_OPTIONS = {
  model: string,
  image: string,
  prompt: string,
  samples: NUMBER,
  seed: NUMBER,
  estimator: choiceOf(ESTIMATORS, "estimator"),
  device,
  "batch-size": NUMBER,
  "device-id": NUMBER,
  "allow-truncation": boolean,
  ...PIPELINE_OPTIONS,
  json: boolean,
  quiet: boolean,
} as const;

/** nll has no contrast, so no estimator to choose and no two prompts to be cut differently. */
const { estimator: _, "allow-truncation": _allow, ...NLL_OPTIONS } = QUERY_OPTIONS;

/** `--precision SE` of the commands whose numbers are contrasts (info, total, about). */
const PRECISION_OPTIONS = { precision: NUMBER } as const;

const DEVICE_LIST = DEVICES.join("|");
const QUERY_USAGE = `--model DIR --image FILE --prompt TEXT [--samples N] [--seed S]
         [--estimator orthogonal|standard] [--device ${DEVICE_LIST}] [--device-id K] [--batch-size B]
         [--allow-truncation] [--json] [--quiet]   (progress on stderr: a live bar on a terminal,
         else a line every 10 s; --allow-truncation: run contrasts whose two prompts a text
         encoder's context cuts differently, recorded in the provenance)
         ${PIPELINE_USAGE}`;

/** `--out` of a command that writes one PNG. */
function pngPath(values: Values, command: string): string {
  const out = required(values, command, "out");
  if (!out.toLowerCase().endsWith(".png")) {
    throw new InvalidArgumentError(`${command} writes a PNG; --out ${out} does not end in .png`);
  }
  return out;
}

/** Model data → pixels (the VAE decoder for latents) → PNG, and the data itself as .npy beside it. */
async function writeDataPng(
  model: OnnxModel,
  data: Float32Array,
  out: string,
): Promise<void> {
  const pixels = await toPixels(model, data);
  const [, height, width] = model.latent
    ? [3, model.imageSize.height, model.imageSize.width]
    : model.shape;
  await writePng(
    out,
    await rgbToPng(chwToRgb(pixels, 3, height, width, { clamp: true }), width, height),
  );
  await Deno.writeFile(out.replace(/\.png$/i, ".npy"), arrayToNpy(data, [...model.shape]));
}

/** `--scale shared|each` (default shared; the parser checked it): the colour scale of the maps. */
function mapScale(values: Values): typeof MAP_SCALES[number] {
  return (values.scale as typeof MAP_SCALES[number] | undefined) ?? "shared";
}

/** The validated options of a one-image query, checked before any model loads. */
function queryOptions(values: Values, command: string) {
  const samples = numberOption(values, "samples");
  const seed = numberOption(values, "seed");
  const batchSize = numberOption(values, "batch-size");
  const { device, deviceId } = deviceOptions(values);
  return {
    deviceId,
    model: required(values, command, "model"),
    image: required(values, command, "image"),
    prompt: command === "nll"
      ? (values.prompt as string | undefined) ?? ""
      : required(values, command, "prompt"),
    samples: samples === undefined ? 100 : checkSamples(samples),
    seed: seed === undefined ? 0 : checkSeed(seed),
    estimator: checkEstimator(
      (values.estimator as string | undefined) ?? "orthogonal",
    ) as EstimatorName,
    device,
    batchSize,
    allowTruncation: values["allow-truncation"] === true,
    precision: precisionOption(values),
    pipeline: pipelineOptions(values),
    json: values.json === true,
    quiet: values.quiet === true,
  };
}

/** The estimate as one line, or its JSON (scalars and provenance). */
function printEstimate(
  log: (line: string) => void,
  json: boolean,
  result: { toJSON(): unknown; toString(): string },
) {
  log(json ? JSON.stringify(result) : result.toString());
}

/** Every command, in the order the usage lists them. */
export const COMMANDS: readonly Command[] = Object.freeze<Command[]>([
  {
    name: "demo",
    outFolder: true,
    summary: "per-word information and heat maps of a held-out shapes scene",
    usage: `infodiff demo [--out DIR] [--samples N] [--seed S] [--oracle | --model DIR
         [--max-sequence-length N]] [--scale shared|each]
  The trained shapes-flow model (FLUX.1's layout, T5 at 16 tokens; --model
  fixtures/models/shapes-tiny: the earlier demo model; --oracle: the exact example oracle) on a
  held-out scene: the per-word table and, under --out (default out/demo), image.png, a labelled
  overlay, a bare map and a .npy per word, grid.png (all words on one colour scale, with its colour
  bar; --scale each: each its own) and result.json.
  example: infodiff demo --samples 50 --out out/demo`,
    options: {
      out: string,
      samples: NUMBER,
      seed: NUMBER,
      oracle: boolean,
      model: string,
      "max-sequence-length": NUMBER,
      scale: choiceOf(MAP_SCALES),
    },
    async run(values, _positionals, log) {
      const samples = numberOption(values, "samples");
      const seed = numberOption(values, "seed");
      await runDemo({
        out: values.out as string | undefined,
        samples: samples === undefined ? undefined : checkSamples(samples),
        seed: seed === undefined ? undefined : checkSeed(seed),
        oracle: values.oracle === true,
        model: values.model as string | undefined,
        load: pipelineOptions(values),
        scale: mapScale(values),
        log,
      });
      return 0;
    },
  },
  {
    name: "info",
    outFolder: true,
    summary: "every word's information about an image, with maps",
    usage: `infodiff info ${QUERY_USAGE} [--precision SE] [--out DIR [--scale shared|each]]
  i(x; word | rest of the prompt) for every word, and the total, under an ONNX export (SD 1.x/2.x,
  SDXL, SD 3/3.5, FLUX.1); --precision SE draws in rounds (from --samples, up to 20 times as many) until every
  word's standard error is at most SE nats (the total keeps the SE it reached); --out writes
  what the model saw (image.png), per word an overlay labelled with the word and nats ± se, the
  bare map (PNG at image resolution, .npy at model resolution), grid.png of all words on one
  colour scale with a colour bar (--scale each: each its own), and result.json (numbers, maps,
  provenance); --json prints the numbers only (no maps).
  example: infodiff info --model sd21-onnx --image cat.png --prompt "a cat on a sofa" --out out/cat`,
    options: { ...QUERY_OPTIONS, ...PRECISION_OPTIONS, out: string, scale: choiceOf(MAP_SCALES) },
    async run(values, _positionals, log) {
      const options = queryOptions(values, "info");
      await runInfo({
        ...options,
        out: values.out as string | undefined,
        scale: mapScale(values),
        log,
      });
      return 0;
    },
  },
  {
    name: "total",
    summary: "i(x; prompt) against the empty prompt",
    usage: `infodiff total ${QUERY_USAGE} [--precision SE]
  The pointwise mutual information of the image and the whole prompt, in nats ± SE; --precision
  SE draws in rounds (up to 20 times --samples) until its standard error is at most SE nats.
  example: infodiff total --model sd21-onnx --image cat.png --prompt "a cat" --json`,
    options: { ...QUERY_OPTIONS, ...PRECISION_OPTIONS },
    async run(values, _positionals, log) {
      const options = queryOptions(values, "total");
      printEstimate(log, options.json, await withQuery(options, (q) => q.total()));
      return 0;
    },
  },
  {
    name: "about",
    summary: "one word's information given the rest of the prompt",
    usage: `infodiff about ${QUERY_USAGE} --word W [--occurrence K] [--precision SE]
  i(x; W | prompt without W): every occurrence of W removed at word boundaries, or only the
  K-th (counting from 0) with --occurrence; --precision as total's.
  example: infodiff about --model sd21-onnx --image cat.png --prompt "a cat on a sofa" --word sofa`,
    options: { ...QUERY_OPTIONS, ...PRECISION_OPTIONS, word: string, occurrence: NUMBER },
    async run(values, _positionals, log) {
      const options = queryOptions(values, "about");
      const word = required(values, "about", "word");
      const occurrence = numberOption(values, "occurrence");
      if (occurrence !== undefined && (!Number.isInteger(occurrence) || occurrence < 0)) {
        throw new InvalidArgumentError(`--occurrence expects an integer ≥ 0, got ${occurrence}`);
      }
      const removal = occurrence === undefined ? {} : { occurrence };
      const result = await withQuery(options, (q) => q.about(word, removal));
      printEstimate(log, options.json, result);
      return 0;
    },
  },
  {
    name: "nll",
    summary: "−log p(x | prompt) in nats and bits per dimension",
    usage: `infodiff nll --model DIR --image FILE [--prompt TEXT] [--samples N] [--seed S]
         [--device ${DEVICE_LIST}] [--device-id K] [--batch-size B] [--json] [--quiet]
         ${PIPELINE_USAGE}
  The negative log-likelihood of the model's data (a VAE latent for SD) given the prompt (default
  the empty prompt), over the trained log-SNR range.
  example: infodiff nll --model sd21-onnx --image cat.png --prompt "a cat"`,
    options: NLL_OPTIONS,
    async run(values, _positionals, log) {
      const options = queryOptions(values, "nll");
      printEstimate(log, options.json, await withQuery(options, (q) => q.nll()));
      return 0;
    },
  },
  {
    name: "pid",
    summary: "redundancy, unique and synergy of two words of the prompt",
    usage: `infodiff pid ${QUERY_USAGE} --a WORD --b WORD
  The partial information decomposition of two words, plain and conditional, each term ± SE;
  --json prints the terms without their maps.
  example: infodiff pid --model sd21-onnx --image doctor.png --prompt "a male doctor" --a male --b doctor`,
    options: { ...QUERY_OPTIONS, a: string, b: string },
    async run(values, _positionals, log) {
      const options = queryOptions(values, "pid");
      const a = required(values, "pid", "a"), b = required(values, "pid", "b");
      const result = await withQuery(options, (q) => q.pid(a, b));
      if (!options.json) {
        log(result.toString());
        return 0;
      }
      const terms = Object.fromEntries(
        (["plain", "conditional"] as const).map((form) => [
          form,
          Object.fromEntries(
            result.rows().filter((r) => r.form === form).map((r) => [r.term, {
              nats: r.nats,
              se: r.se,
            }]),
          ),
        ]),
      );
      log(JSON.stringify({ prompt: result.prompt, a, b, ...terms, provenance: result.provenance }));
      return 0;
    },
  },
  {
    name: "generate",
    summary: "a DDIM sample from a prompt, as a PNG",
    usage: `infodiff generate --model DIR --prompt TEXT --out IMAGE.png [--steps N] [--seed S]
         [--guidance G] [--device ${DEVICE_LIST}] [--device-id K]
  Deterministic DDIM (η = 0) at the model's trained timesteps, decoded to pixels (VAE decoder for
  latent models); also writes the model data beside it as IMAGE.npy.
  example: infodiff generate --model sd21-onnx --prompt "a red car" --steps 50 --seed 3 --out car.png`,
    options: {
      model: string,
      prompt: string,
      out: string,
      steps: NUMBER,
      seed: NUMBER,
      guidance: NUMBER,
      device,
      "device-id": NUMBER,
    },
    async run(values, _positionals, log) {
      const { model: dir, prompt } = {
        model: required(values, "generate", "model"),
        prompt: required(values, "generate", "prompt"),
      };
      const out = pngPath(values, "generate");
      await checkOutputFile(out);
      const steps = numberOption(values, "steps"), guidance = numberOption(values, "guidance");
      const seed = numberOption(values, "seed");
      const device = deviceOptions(values);
      const model = await loadModel(dir, device);
      try {
        const data = await model.generate(prompt, {
          steps,
          guidance,
          seed: seed === undefined ? undefined : checkSeed(seed),
        });
        await writeDataPng(model, data, out);
        log(`wrote ${out} and ${out.replace(/\.png$/i, ".npy")}`);
      } finally {
        await model.dispose();
      }
      return 0;
    },
  },
  {
    name: "invert",
    summary: "the deterministic DDIM inversion of an image (its x_T)",
    usage: `infodiff invert --model DIR --image FILE --prompt TEXT --out NOISE.npy [--steps N]
         [--guidance G] [--device ${DEVICE_LIST}] [--device-id K]
  Runs DDIM backwards from the image under the prompt to the noisiest level and writes x_T as a
  NumPy array of the model data's shape [c, h, w] (what generate starts from).
  example: infodiff invert --model sd21-onnx --image cat.png --prompt "a cat" --out cat-xT.npy`,
    options: {
      model: string,
      image: string,
      prompt: string,
      out: string,
      steps: NUMBER,
      guidance: NUMBER,
      device,
      "device-id": NUMBER,
    },
    async run(values, _positionals, log) {
      const dir = required(values, "invert", "model");
      const image = required(values, "invert", "image");
      const prompt = required(values, "invert", "prompt");
      const out = required(values, "invert", "out");
      if (!out.toLowerCase().endsWith(".npy")) {
        throw new InvalidArgumentError(
          `invert writes a .npy file; --out ${out} does not end in .npy`,
        );
      }
      await checkOutputFile(out);
      const steps = numberOption(values, "steps"), guidance = numberOption(values, "guidance");
      const model = await loadModel(dir, deviceOptions(values));
      try {
        const noise = await model.invert(image, prompt, { steps, guidance });
        await Deno.writeFile(out, arrayToNpy(noise, [...model.shape]));
        log(`wrote ${out} (${model.shape.join("×")})`);
      } finally {
        await model.dispose();
      }
      return 0;
    },
  },
  {
    name: "merge",
    summary: "merge the results files of a sharded study (no model)",
    usage: `infodiff merge SHARD.jsonl... -o OUT.jsonl
  Joins shard files of one study: same study, settings and model or refused; every row kept;
  reports missing and unfinished shards and duplicates. Exit status 0 when complete, 1 when not.
  example: infodiff merge results/shard-*-of-8.jsonl -o results/all.jsonl`,
    takesArguments: true,
    options: { output: { type: "string", short: "o" } },
    async run(values, positionals, log) {
      if (positionals.length === 0 || typeof values.output !== "string") {
        throw new InvalidArgumentError(
          "merge needs the shard files and -o OUT.jsonl, e.g. infodiff merge shard-*.jsonl -o " +
            "all.jsonl",
        );
      }
      const report = await mergeResults(positionals, values.output);
      log(formatMergeReport(report));
      return report.complete ? 0 : 1;
    },
  },
  {
    name: "fetch",
    summary: "download a hub model into the shared cache (before a sharded study)",
    usage: `infodiff fetch ORG/NAME[@REVISION][:SUBFOLDER] [--cache DIR] [--quiet] [--json]
  Resolves the revision (default main) to a commit and downloads into the Hugging Face cache
  (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub, Python's layout) only the files the
  ONNX loader reads and the external weights their graphs name; a dropped download resumes on a
  rerun. Reads HF_TOKEN (or $HF_HOME/token) and HF_ENDPOINT. Jobs that then run with
  HF_HUB_OFFLINE=1 --model ORG/NAME load from the cache and never race to download.
  example: infodiff fetch onnx-community/stable-diffusion-v1-5-ONNX`,
    takesArguments: true,
    options: { cache: string, quiet: boolean, json: boolean },
    async run(values, positionals, log) {
      const spec = positionals.length === 1 ? parseHubSpec(positionals[0]) : undefined;
      if (!spec) {
        throw new InvalidArgumentError(
          `fetch needs one hub id ORG/NAME[@REVISION][:SUBFOLDER], got ${
            positionals.length ? positionals.map((p) => `"${p}"`).join(" ") : "none"
          }`,
        );
      }
      const progress = progressReporter({ unit: "MB", quiet: values.quiet === true });
      let model;
      try {
        model = await resolveHubModel(spec, {
          ...(typeof values.cache === "string" ? { cacheDir: values.cache } : {}),
          onDownloadProgress: (p) =>
            progress.update(Math.round(p.bytes / 1e6), Math.round(p.totalBytes / 1e6)),
        });
      } finally {
        progress.finish();
      }
      const mb = (model.downloadedBytes / 1e6).toFixed(1);
      log(
        values.json
          ? JSON.stringify(model)
          : `${model.repo}@${model.revision} = commit ${model.commit}\n${model.dir}\n` +
            (model.downloadedBytes > 0 ? `downloaded ${mb} MB` : "already in the cache"),
      );
      return 0;
    },
  },
  {
    name: "summarize",
    outFolder: true,
    summary: "tables, charts and report.html of a results file (no model)",
    usage: `infodiff summarize RESULTS.jsonl --out DIR
  Rebuilds the study's result from its results file (a shard's or a merged one) and writes
  summary.txt, summary.json, chart.svg and chart.png, and one self-contained report.html.
  example: infodiff summarize results/all.jsonl --out report/`,
    takesArguments: true,
    options: { out: string },
    async run(values, positionals, log) {
      if (positionals.length !== 1 || typeof values.out !== "string") {
        throw new InvalidArgumentError(
          "summarize needs one results file and --out DIR, e.g. infodiff summarize all.jsonl " +
            "--out report/",
        );
      }
      const report = await writeStudyReport(positionals[0], values.out);
      log(report.summary);
      log(`wrote ${report.files.join(", ")} under ${values.out}`);
      return 0;
    },
  },
  ...STUDY_COMMANDS,
]);
