/**
 * The `infodiff` command line: `deno task demo`, or `deno task cli <command> [options]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runDemo } from "./demo.ts";
import { InfoDiffError } from "../errors.ts";

const USAGE = `usage: infodiff <command> [options]

commands:
  demo [--out DIR] [--samples N] [--seed S]   per-word information of a built-in example,
                                              heat maps written as PNG under DIR (default out/demo)
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
      });
      return 0;
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
