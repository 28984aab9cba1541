/**
 * The `infodiff` command line: `deno task demo`, or `deno task cli <command> [options]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runDemo } from "./demo.ts";
import { runInfo } from "./info.ts";
import { formatMergeReport, mergeResults } from "../studies/merge.ts";
import { DEVICES } from "../models/onnx/onnx-model.ts";
import { checkDevice } from "../models/onnx/onnx-model.ts";
import { describeError, InfoDiffError, InvalidArgumentError } from "../errors.ts";
import { checkSamples } from "../estimators/options.ts";
import { checkSeed } from "../numerics/random.ts";

const USAGE = `usage: infodiff <command> [options]

commands:
  demo [--out DIR] [--samples N] [--seed S] [--oracle | --model DIR]
                                              per-word information of a held-out shapes scene under
                                              the trained shapes-tiny model (--oracle: the exact
                                              example oracle), heat maps as PNG under DIR (out/demo)
  info --model DIR --image FILE --prompt TEXT [--samples N] [--seed S]
       [--device ${DEVICES.join("|")}] [--batch-size B] [--out DIR] [--json]
                                              per-word information of an image under a Stable
                                              Diffusion ONNX export; overlays under --out
  merge SHARD.jsonl... -o OUT.jsonl           merge the results files of a sharded study (no model
                                              needed): same study, settings and model or refused;
                                              reports missing and unfinished shards and duplicates;
                                              exit status 0 when complete, 1 when shards are missing

Usage errors exit with status 2, failures of the run with 1.
`;

/**
 * Runs the command line with the given arguments and returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * console.assert((await main(["--help"])) === 0);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args);
  const [command] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const number = (name: string, text?: string) => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value)) {
      throw new InvalidArgumentError(`--${name} expects a number, got "${text}"`);
    }
    return value;
  };
  // every argument is checked before a model loads or anything is computed
  if (values.samples !== undefined) checkSamples(number("samples", values.samples)!);
  if (values.seed !== undefined) checkSeed(number("seed", values.seed)!);
  if (values.out !== undefined) await checkOutputFolder(values.out);
  switch (command) {
    case "demo":
      await runDemo({
        out: values.out,
        samples: number("samples", values.samples),
        seed: number("seed", values.seed),
        oracle: values.oracle,
        model: values.model,
      });
      return 0;
    case "info": {
      const required = (name: "model" | "image" | "prompt") => {
        const value = values[name];
        if (value === undefined) {
          throw new InvalidArgumentError(`info needs --${name}; see infodiff --help`);
        }
        return value;
      };
      await runInfo({
        model: required("model"),
        image: required("image"),
        prompt: required("prompt"),
        samples: number("samples", values.samples),
        seed: number("seed", values.seed),
        device: checkDevice(values.device ?? "auto"),
        batchSize: number("batch-size", values["batch-size"]),
        out: values.out,
        json: values.json,
      });
      return 0;
    }
    case "merge": {
      const inputs = positionals.slice(1);
      if (inputs.length === 0 || values.output === undefined) {
        throw new InvalidArgumentError(
          "merge needs the shard files and -o OUT.jsonl, e.g. infodiff merge shard-*.jsonl -o " +
            "all.jsonl",
        );
      }
      const report = await mergeResults(inputs, values.output);
      console.log(formatMergeReport(report));
      return report.complete ? 0 : 1;
    }
    default:
      throw new InvalidArgumentError(
        `unknown command "${command}"; expected demo, info or merge (see infodiff --help)`,
      );
  }
}

/** `--out` must be a folder or not exist yet (it is created); a file there is refused at once. */
async function checkOutputFolder(path: string): Promise<void> {
  const stat = await Deno.stat(path).catch(() => undefined);
  if (stat && !stat.isDirectory) {
    throw new InvalidArgumentError(`--out ${path} is a file; expected a folder (or a new path)`);
  }
}

/** The options of every command; node's parser errors become usage errors. */
function parseCommandLine(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: OPTIONS,
    });
  } catch (error) {
    throw new InvalidArgumentError(
      "the options could not be read (an unknown option, or one without its value); see " +
        "infodiff --help",
      { cause: error },
    );
  }
}

const OPTIONS = {
  out: { type: "string" },
  samples: { type: "string" },
  seed: { type: "string" },
  help: { type: "boolean", short: "h" },
  model: { type: "string" },
  image: { type: "string" },
  prompt: { type: "string" },
  device: { type: "string" },
  "batch-size": { type: "string" },
  json: { type: "boolean" },
  oracle: { type: "boolean" },
  output: { type: "string", short: "o" },
} as const;

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (!(error instanceof InfoDiffError)) throw error;
    console.error(`infodiff: ${describeError(error)}`);
    Deno.exit(error instanceof InvalidArgumentError ? 2 : 1);
  }
}
