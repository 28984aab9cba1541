/**
 * The `infodiff` command line: `deno task demo`, or `deno task cli <command> [options]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { describeError, InfoDiffError, InvalidArgumentError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { type Command, COMMANDS, type Values } from "./commands.ts";

const USAGE = `usage: infodiff <command> [options]     (infodiff <command> --help for one command)

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}

  --version  the infodiff version

Usage errors exit with status 2, failures of the run with 1.
example: infodiff info --model sd21-onnx --image cat.png --prompt "a cat on a sofa" --out out/cat`;

/**
 * Runs the command line with the given arguments and returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * console.assert((await main(["--help"], () => {})) === 0);
 * ```
 */
export async function main(
  args: string[],
  log: (line: string) => void = console.log,
): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined || first === "--help" || first === "-h") {
    log(USAGE);
    return first === undefined ? 2 : 0;
  }
  if (first === "--version") {
    log(`infodiff ${VERSION}`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) {
    throw new InvalidArgumentError(
      `unknown command "${first}"; expected one of ${
        COMMANDS.map((c) => c.name).join(", ")
      } (see infodiff --help)`,
    );
  }
  const { values, positionals } = parseCommandLine(command, rest);
  if (values.help) {
    log(command.usage);
    return 0;
  }
  // every argument is checked before a model loads or anything is computed
  if (command.outFolder && typeof values.out === "string") await checkOutputFolder(values.out);
  return await command.run(values, positionals, log);
}

/** `--out` must be a folder or not exist yet (it is created); a file there is refused at once. */
async function checkOutputFolder(path: string): Promise<void> {
  const stat = await Deno.stat(path).catch(() => undefined);
  if (stat && !stat.isDirectory) {
    throw new InvalidArgumentError(`--out ${path} is a file; expected a folder (or a new path)`);
  }
}

/** One command's options; node's parser errors (unknown option, missing value) become usage errors. */
function parseCommandLine(command: Command, args: string[]) {
  try {
    const parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { ...command.options, help: { type: "boolean", short: "h" } },
    });
    return { values: parsed.values as Values, positionals: parsed.positionals };
  } catch (error) {
    throw new InvalidArgumentError(
      `the options of ${command.name} could not be read (an unknown option, or one without its ` +
        `value); see infodiff ${command.name} --help`,
      { cause: error },
    );
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (!(error instanceof InfoDiffError)) throw error;
    console.error(`infodiff: ${describeError(error)}`);
    Deno.exit(error instanceof InvalidArgumentError ? 2 : 1);
  }
}
