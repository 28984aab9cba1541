/**
 * The `infodiff` command line: `deno task demo`, or `deno task cli <command> [options]`.
 *
 * @module
 */
import { InfoDiffError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { COMMANDS } from "./commands.ts";
import { formatError, nearest, parseCommandLine, UsageError } from "./command.ts";
import { checkOutputFolder } from "./outputs.ts";

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
  if (!command) throw unknownCommand(first);
  const { values, positionals, help } = parseCommandLine(command, rest);
  if (help) {
    log(command.usage);
    return 0;
  }
  // every argument is checked before a model loads or anything is computed: --out is made and
  // written to (a probe file), so an unwritable folder never costs a finished result
  if (command.outFolder && typeof values.out === "string") await checkOutputFolder(values.out);
  return await command.run(values, positionals, log);
}

/** The command named is none of the table's: the nearest one, or the list. */
function unknownCommand(name: string): UsageError {
  const names = COMMANDS.map((c) => c.name);
  if (name.startsWith("-")) {
    return new UsageError(
      `the command comes first, got the option ${name}; see infodiff --help for the commands`,
    );
  }
  const near = nearest(name, names);
  return new UsageError(
    `unknown command "${name}"; ` +
      (near ? `did you mean ${near}?` : `expected one of ${names.join(", ")}`),
  );
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (!(error instanceof InfoDiffError)) throw error;
    const { text, code } = formatError(error);
    console.error(text);
    Deno.exit(code);
  }
}
