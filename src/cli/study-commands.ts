/**
 * The study commands: `localize`, `relations`, `intervene` and `pid-study` on dataset files, with
 * a results file to resume from, a shard (given, or from Slurm / Kubernetes), progress in items,
 * and an optional report. Every argument is checked before the model loads.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import {
  checkDesign,
  checkEstimator,
  checkPositiveInteger,
  checkSamples,
  ESTIMATORS,
} from "../estimators/options.ts";
import { DRAW_DESIGNS } from "../estimators/draws.ts";
import { PIPELINE_OPTIONS, PIPELINE_USAGE, pipelineOptions, precisionOption } from "./command.ts";
import { calibrateProfile } from "../estimators/calibrate.ts";
import { PROFILE_FILE, writeProfile } from "../models/profile-file.ts";
import { checkSeed } from "../numerics/random.ts";
import { DEVICES } from "../models/onnx/onnx-model.ts";
import { loadModel, type OnnxModel } from "../query/load-model.ts";
import { readAro } from "../datasets/aro.ts";
import {
  LOCALIZATION_METHODS,
  type LocalizationMethod,
  PAPER_LOCALIZATION_METHODS,
} from "../studies/localization-result.ts";
import { type AttentionDraws, localizationStudy } from "../studies/localization.ts";
import type { ImageFit } from "../images/load-image.ts";
import { relationStudy } from "../studies/relations.ts";
import {
  type InterventionItem,
  type InterventionSampler,
  interventionStudy,
} from "../studies/intervention.ts";
import { type PidRow, pidStudy } from "../studies/pid-study.ts";
import type { StudyOptions, StudyProgress } from "../studies/runner.ts";
import { shardFromEnvironment } from "../studies/shard.ts";
import { describeProfilePlan, studyProfilePlan } from "../studies/self-calibration.ts";
import { estimatorOptions } from "../studies/study-description.ts";
import { writeStudyReport } from "../plots/report.ts";
import {
  choiceOf,
  type Command,
  deviceOptions,
  NUMBER,
  numberOption,
  required,
  UsageError,
  type Values,
} from "./command.ts";
import { conceptWords } from "../text/prompt.ts";
import { requireConceptWords } from "../attention/capability.ts";
import { progressReporter } from "./progress.ts";

const string = { type: "string" } as const;
const boolean = { type: "boolean" } as const;

/** `--fit`: how the image studies bring an image to the model's size (default the reference's). */
const FIT = choiceOf(["fill", "cover"] satisfies readonly ImageFit[], "fit");
const FIT_USAGE =
  `--fit fill (default, the reference's: both sides resized, aspect ratio not kept) or
  cover (shorter side resized, centre cropped).`;

/** What every study command takes. */
const device = choiceOf(DEVICES, "device");
const STUDY_OPTIONS = {
  model: string,
  results: string,
  shard: string,
  "shard-count": NUMBER,
  reuse: choiceOf(["any", "matching"], "reuse rule"),
  samples: NUMBER,
  seed: NUMBER,
  estimator: choiceOf(ESTIMATORS, "estimator"),
  design: choiceOf(DRAW_DESIGNS, "draw design"),
  precision: NUMBER,
  device,
  "device-id": NUMBER,
  "batch-size": NUMBER,
  "rows-in-flight": NUMBER,
  ...PIPELINE_OPTIONS,
  "calibration-rows": string,
  "dry-run": boolean,
  report: string,
  quiet: boolean,
} as const;

/** The intervention study fixes its two estimator forms: it takes no --estimator. */
const { estimator: _, ...INTERVENTION_OPTIONS } = STUDY_OPTIONS;

/** The study options' usage; the intervention study fixes its estimator forms, so it has none. */
function studyUsage({ estimator = true } = {}): string {
  return `--model DIR --results FILE.jsonl [--shard i/n|auto [--shard-count N]]
         [--reuse any] [--samples N] [--seed S]${
    estimator ? " [--estimator orthogonal|standard]" : ""
  }
         [--design ${DRAW_DESIGNS.join("|")}] [--precision SE]
         [--device ${DEVICES.join("|")}] [--device-id K] [--batch-size B]
         [--rows-in-flight R] [--calibration-rows N|off] [--dry-run] [--report DIR] [--quiet]
         ${PIPELINE_USAGE}
  On a model without a calibrated profile the first N rows (default 12) draw α from the model's
  prior, their draws fit a profile that every other row draws from, stored in infodiff's cache
  for every shard and later run (shard 0 fits it, the others wait); --calibration-rows off draws
  every row from the prior. --dry-run says where α will come from and exits.
  Rows go to --results as they finish (resumed on a rerun, refused if written by another study,
  settings or model unless --reuse any); --shard auto reads a Slurm job array or a Kubernetes
  Indexed Job; R rows run at once and share full model calls (default 4; numbers unchanged);
  --precision SE draws more per row until its numbers' standard errors reach SE nats;
  --report writes tables, a chart and report.html of the file when done.`;
}

/** The study options shared by the four commands, checked before any model loads. */
function studyOptions(values: Values, command: string) {
  const text = (name: string) => values[name] as string | undefined;
  const samples = numberOption(values, "samples");
  const seed = numberOption(values, "seed");
  const shardCount = numberOption(values, "shard-count");
  const reuse = text("reuse"); // one of its choices: the parser checked it
  const model = required(values, command, "model");
  if (typeof values.results !== "string") {
    throw new InvalidArgumentError(
      `${command} needs --results FILE.jsonl (finished rows go there and a rerun resumes them)`,
    );
  }
  const study: StudyOptions = {
    samples: samples === undefined ? undefined : checkSamples(samples),
    seed: seed === undefined ? undefined : checkSeed(seed),
    estimator: text("estimator") === undefined ? undefined : checkEstimator(text("estimator")!),
    design: text("design") === undefined ? undefined : checkDesign(text("design")!),
    precision: precisionOption(values),
    batchSize: numberOption(values, "batch-size"),
    rowsInFlight: optional(
      numberOption(values, "rows-in-flight"),
      (rows) => checkPositiveInteger("--rows-in-flight", rows),
    ),
    results: values.results,
    shard: shardFromEnvironment(text("shard") ?? "0/1", Deno.env.toObject(), shardCount),
    reuse: reuse as "any" | "matching" | undefined,
    calibration: calibrationOption(text("calibration-rows")),
  };
  return {
    model,
    pipeline: pipelineOptions(values),
    ...deviceOptions(values),
    report: text("report"),
    quiet: values.quiet === true,
    dryRun: values["dry-run"] === true,
    study,
  };
}

/**
 * `--concepts WORD,WORD`: concept attention's extra words (FLUX.1), checked before the model loads:
 * refused without `concept-attention` among the methods (the default methods hold none), and for
 * a blank or repeated word.
 */
function conceptsOption(
  text: string | undefined,
  methods: readonly string[] | undefined,
): string[] | undefined {
  if (text === undefined) return undefined;
  if (!(methods ?? PAPER_LOCALIZATION_METHODS).includes("concept-attention")) {
    throw new UsageError(
      `--concepts names concept attention's extra words; expected concept-attention among ` +
        `--methods, got ${methods ? methods.join(",") : "the default methods"}`,
      "localize",
    );
  }
  return conceptWords(text.split(","));
}

/** `--calibration-rows N|off`: how many rows calibrate (default 12), or none. */
function calibrationOption(text: string | undefined): StudyOptions["calibration"] {
  if (text === undefined) return undefined;
  if (text === "off") return false;
  const rows = Number(text);
  if (!Number.isInteger(rows) || rows < 1) {
    throw new InvalidArgumentError(
      `--calibration-rows expects a positive whole number of rows or "off", got "${text}"`,
    );
  }
  return { rows };
}

function optional<T>(value: T | undefined, check: (value: T) => T): T | undefined {
  return value === undefined ? undefined : check(value);
}

/**
 * Loads the model, runs the study with progress in items, writes the report if asked.
 * `checkModel` refuses what only the loaded model can tell (before a dry run's plan, or any row).
 */
async function runStudyCommand(
  options: ReturnType<typeof studyOptions>,
  log: (line: string) => void,
  body: (model: OnnxModel, study: StudyOptions) => Promise<{ toString(): string }>,
  checkModel?: (model: OnnxModel) => void,
): Promise<number> {
  const model = await loadModel(options.model, {
    device: options.device,
    deviceId: options.deviceId,
    ...options.pipeline,
  });
  try {
    checkModel?.(model);
  } catch (error) {
    await model.dispose();
    throw error;
  }
  // where α will come from, before any row runs (the whole of a dry run)
  const plan = await studyProfilePlan(
    model,
    estimatorOptions(options.study),
    options.study.calibration,
    Infinity,
  );
  if (!options.quiet || options.dryRun) log(describeProfilePlan(plan));
  if (options.dryRun) {
    await model.dispose();
    return 0;
  }
  const progress = progressReporter({ unit: "items", quiet: options.quiet });
  let result;
  try {
    const onProgress = (p: StudyProgress) => progress.update(p.done, p.total);
    result = await body(model, { ...options.study, onProgress });
  } finally {
    progress.finish();
    await model.dispose();
  }
  log(result.toString());
  if (options.report) {
    const report = await writeStudyReport(options.study.results!, options.report);
    log(`wrote ${report.files.join(", ")} under ${options.report}`);
  }
  return 0;
}

async function readJsonArray<T>(path: string, what: string): Promise<T[]> {
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${what} from ${path}; expected a JSON array`, {
      cause: error,
    });
  }
  if (!Array.isArray(value)) {
    throw new InvalidArgumentError(`${path} holds no JSON array; expected an array of ${what}`);
  }
  return value as T[];
}

/** The four study commands. */
export const STUDY_COMMANDS: readonly Command[] = Object.freeze<Command[]>([
  {
    name: "localize",
    summary: "the localization study on COCO-IT or COCO files",
    usage: `infodiff localize (--coco-it TABLE.jsonl --instances FILE |
         --instances FILE --captions FILE --images DIR) [--methods a,b]
         [--concepts WORD,WORD] [--pixels] [--fit fill|cover] ${studyUsage()}
  Each row's word map against its category's masks; mIoU at the best global threshold and a
  fixed one. --pixels decodes images to pixels first (pixel-space models such as shapes-tiny).
  --attention-draws study gathers attention-at-sampled-noise at the study's own draws (default
  reference: the reference's 50 α from the logistic with loc 1, scale 2, clip 3).
  --concepts (with --methods concept-attention, FLUX.1): extra concept words streamed beside each
  row's object, as ConceptAttention's segmentation streams "background", "floor", "tree"…
  ${FIT_USAGE}
  example: infodiff localize --model sd21-onnx --coco-it coco_it.jsonl --instances instances.json --results loc.jsonl --shard auto`,
    options: {
      ...STUDY_OPTIONS,
      "coco-it": string,
      instances: string,
      captions: string,
      images: string,
      methods: { ...choiceOf(LOCALIZATION_METHODS, "method"), list: true },
      concepts: string,
      "attention-draws": choiceOf(["reference", "study"] satisfies AttentionDraws[]),
      pixels: boolean,
      fit: FIT,
    },
    run(values, _positionals, log) {
      const options = studyOptions(values, "localize");
      const instances = values.instances as string | undefined;
      if (!instances) throw new InvalidArgumentError("localize needs --instances FILE (the masks)");
      const table = values["coco-it"] as string | undefined;
      const captions = values.captions as string | undefined;
      const images = values.images as string | undefined;
      if (!table && !(captions && images)) {
        throw new InvalidArgumentError(
          "localize needs --coco-it TABLE, or --captions FILE and --images DIR",
        );
      }
      // some of LOCALIZATION_METHODS: the parser checked each
      const methods = (values.methods as string | undefined)?.split(",").map((m) => m.trim());
      const concepts = conceptsOption(values.concepts as string | undefined, methods);
      const dataset = table
        ? { table, instances }
        : { instances, captions: captions!, imagesDir: images! };
      return runStudyCommand(
        options,
        log,
        (model, study) =>
          localizationStudy(model, dataset, {
            ...study,
            methods: methods as LocalizationMethod[] | undefined,
            concepts,
            attentionDraws: values["attention-draws"] as AttentionDraws | undefined,
            loadImage: values.pixels ? "pixels" : undefined,
            fit: values.fit as ImageFit | undefined,
          }),
        // words on a model that streams none (SD 3, a UNet) would fail every row: refused once
        (model) => {
          if (concepts) requireConceptWords(model, concepts);
        },
      );
    },
  },
  {
    name: "relations",
    summary: "the relation / attribute study on ARO files",
    usage: `infodiff relations --aro FILE.json [--images DIR] [--pixels] [--fit fill|cover]
         ${studyUsage()}
  Per item, the caption option with the highest information (all options on the same draws);
  accuracy with binomial standard errors, overall, per kind and per group.
  ${FIT_USAGE}
  example: infodiff relations --model sd21-onnx --aro visual_genome_relation.json --results rel.jsonl`,
    options: { ...STUDY_OPTIONS, aro: string, images: string, pixels: boolean, fit: FIT },
    async run(values, _positionals, log) {
      const options = studyOptions(values, "relations");
      const aro = values.aro as string | undefined;
      if (!aro) throw new InvalidArgumentError("relations needs --aro FILE.json");
      const items = await readAro(aro, { imageRoot: values.images as string | undefined });
      return runStudyCommand(
        options,
        log,
        (model, study) =>
          relationStudy(model, items, {
            ...study,
            loadImage: values.pixels ? "pixels" : undefined,
            fit: values.fit as ImageFit | undefined,
          }),
      );
    },
  },
  {
    name: "intervene",
    summary: "the prompt-intervention study on a JSON list of items",
    usage:
      `infodiff intervene --items ITEMS.json [--sampler karras-heun|ddim|flow-heun|flow-euler] [--steps N]
         [--guidance G] [--placeholder TEXT] [--fit fill|cover]
         ${studyUsage({ estimator: false })}
  ITEMS.json: [{ "image": "a.png", "caption": "...", "word": "...", "replacement"?: "..." }, ...].
  Invert, regenerate with every occurrence of the word and its plural replaced by the placeholder
  (default "_"), and correlate the change with the word's information (standard estimator at
  image level, orthogonal maps at pixel level; 2,400 draws per condition by default). The
  default sampler is the reference's Karras–Heun ODE with 100 levels (DDIM: 50 steps); on a
  flow-matching model (SD 3, FLUX.1) its own flow ODE, Heun's steps over 100 levels.
  ${FIT_USAGE} (fill resizes with Lanczos, as the reference's preprocessing.)
  example: infodiff intervene --model sd21-onnx --items coco100.json --results edit.jsonl`,
    options: {
      ...INTERVENTION_OPTIONS,
      items: string,
      sampler: choiceOf(
        ["karras-heun", "ddim", "flow-heun", "flow-euler"] satisfies readonly InterventionSampler[],
        "sampler",
      ),
      steps: NUMBER,
      guidance: NUMBER,
      placeholder: string,
      fit: FIT,
    },
    async run(values, _positionals, log) {
      const options = studyOptions(values, "intervene");
      const file = values.items as string | undefined;
      if (!file) throw new InvalidArgumentError("intervene needs --items ITEMS.json");
      const steps = numberOption(values, "steps");
      const guidance = numberOption(values, "guidance");
      const items = await readJsonArray<InterventionItem>(file, "intervention items");
      return runStudyCommand(options, log, (model, study) =>
        interventionStudy(model, items, {
          ...study,
          sampler: values.sampler as InterventionSampler | undefined,
          steps,
          guidance,
          placeholder: values.placeholder as string | undefined,
          fit: values.fit as ImageFit | undefined,
        }));
    },
  },
  {
    name: "pid-study",
    summary: "partial information decomposition over a JSON list of rows",
    usage: `infodiff pid-study --rows ROWS.json
         ${studyUsage()}
  ROWS.json: [{ "image": "a.png", "prompt": "...", "wordA": "...", "wordB": "..." }, ...].
  example: infodiff pid-study --model sd21-onnx --rows occupations.json --results pid.jsonl`,
    options: { ...STUDY_OPTIONS, rows: string },
    async run(values, _positionals, log) {
      const options = studyOptions(values, "pid-study");
      const file = values.rows as string | undefined;
      if (!file) throw new InvalidArgumentError("pid-study needs --rows ROWS.json");
      const rows = await readJsonArray<PidRow>(file, "PID rows");
      return runStudyCommand(options, log, (model, study) => pidStudy(model, rows, study));
    },
  },
  {
    name: "calibrate",
    summary: "fit a model's log-SNR profile, so its estimates need fewer UNet calls",
    usage: `infodiff calibrate --model DIR --rows ROWS.json [--out FILE] [--samples N] [--bins B]
         [--seed S] [--device ${DEVICES.join("|")}] [--device-id K] [--quiet]
  ROWS.json: [{ "image": "a.png", "prompt": "..." }, ...] — a few images typical of the study.
  Runs stratified draws (default 200 per row) of every word's information, and writes where
  along α the integrands of the informative words live (B bins, default 24): one profile for
  the model, one per word seen. Kept in the model folder as ${PROFILE_FILE} (the
  default --out for a local folder), it is loaded with the model and every estimate then draws
  α from its words' profiles, 90 % of the draws, and the logistic, 10 % (same numbers in
  expectation, smaller errors).
  example: infodiff calibrate --model ./stable-diffusion-2-1-base-onnx --rows calibration.json`,
    options: {
      model: string,
      rows: string,
      out: string,
      samples: NUMBER,
      bins: NUMBER,
      seed: NUMBER,
      device,
      "device-id": NUMBER,
      quiet: boolean,
    },
    async run(values, _positionals, log) {
      const dir = required(values, "calibrate", "model");
      const file = values.rows as string | undefined;
      if (!file) throw new InvalidArgumentError("calibrate needs --rows ROWS.json");
      const local = await Deno.stat(dir).then((s) => s.isDirectory, () => false);
      const out = (values.out as string | undefined) ??
        (local ? `${dir}/${PROFILE_FILE}` : undefined);
      if (!out) {
        throw new InvalidArgumentError(
          `calibrate needs --out FILE for a hub model (${dir}); load it later with ` +
            `loadModel(id, { profile: FILE })`,
        );
      }
      const rows = await readJsonArray<{ image: string; prompt: string }>(file, "calibration rows");
      const samples = numberOption(values, "samples");
      const seed = numberOption(values, "seed");
      const bins = numberOption(values, "bins");
      const model = await loadModel(dir, { ...deviceOptions(values), profile: false });
      try {
        const prepared = [];
        for (const row of rows) {
          if (typeof row?.image !== "string" || typeof row?.prompt !== "string") {
            throw new InvalidArgumentError(
              `${file}: every row needs "image" (a path) and "prompt" (a string), got ${
                JSON.stringify(row)
              }`,
            );
          }
          prepared.push({ data: await model.prepare(row.image), prompt: row.prompt });
        }
        const profile = await calibrateProfile(model, prepared, {
          samples: samples === undefined ? undefined : checkSamples(samples),
          seed: seed === undefined ? undefined : checkSeed(seed),
          bins,
        });
        await writeProfile(out, profile);
        log(
          `wrote ${out}: ${profile.mass.length} bins over α ∈ [${profile.edges[0].toFixed(2)}, ${
            profile.edges.at(-1)!.toFixed(2)
          }] from ${profile.calibration.contrasts} contrasts, with profiles of ${
            Object.keys(profile.words ?? {}).length
          } words`,
        );
      } finally {
        await model.dispose();
      }
      return 0;
    },
  },
]);
