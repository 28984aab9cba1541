/**
 * The `infodiff` command line: `deno task demo`, or `deno task cli <command> [options]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runDemo } from "./demo.ts";
import { runInfo } from "./info.ts";
import type { Device } from "../models/onnx/onnx-model.ts";
import { InfoDiffError } from "../errors.ts";

const USAGE = `usage: infodiff <command> [options]

commands:
  demo [--out DIR] [--samples N] [--seed S] [--oracle | --model DIR]
                                              per-word information of a held-out shapes scene under
                                              the trained shapes-tiny model (--oracle: the exact
                                              example oracle), heat maps as PNG under DIR (out/demo)
  info --model DIR --image FILE --prompt TEXT [--samples N] [--seed S] [--device auto|cuda|cpu]
       [--batch-size B] [--out DIR] [--json]   per-word information of an image under a Stable
                                              Diffusion ONNX export; overlays under --out
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
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
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
    },
  });
  const [command] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const number = (name: string, text?: string) => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value)) {
      throw new InfoDiffError(`--${name} expects a number, got "${text}"`);
    }
    return value;
  };
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
        if (value === undefined) throw new InfoDiffError(`info needs --${name}\n${USAGE}`);
        return value;
      };
      const device = values.device ?? "auto";
      if (!["auto", "cuda", "cpu", "webgpu"].includes(device)) {
        throw new InfoDiffError(`--device expects auto, cuda, cpu or webgpu, got "${device}"`);
      }
      await runInfo({
        model: required("model"),
        image: required("image"),
        prompt: required("prompt"),
        samples: number("samples", values.samples),
        seed: number("seed", values.seed),
        device: device as Device,
        batchSize: number("batch-size", values["batch-size"]),
        out: values.out,
        json: values.json,
      });
      return 0;
    }
    default:
      console.error(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (error instanceof InfoDiffError) {
      console.error(`infodiff: ${error.message}`);
      Deno.exit(1);
    }
    throw error;
  }
}
