/**
 * What a command of the command line is: its options, its usage, what it runs.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";

/** Parsed option values: strings and booleans by option name. */
export type Values = Readonly<Record<string, string | boolean | undefined>>;

/** One option of a command (node's parseArgs form). */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
}

/** A command: its options, usage and what it runs (returns the exit status). */
export interface Command {
  /** the command's name */
  readonly name: string;
  /** one line for the general usage */
  readonly summary: string;
  /** the full usage, with an example */
  readonly usage: string;
  /** true when `--out` names a folder (checked before anything runs: a file there is refused) */
  readonly outFolder?: boolean;
  /** its options (help is added to every command) */
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** runs it with the parsed values and positional arguments */
  run(values: Values, positionals: readonly string[], log: (line: string) => void): Promise<number>;
}

/**
 * A number option: absent → undefined; not a number → a usage error.
 *
 * @example
 * ```ts
 * import { numberOption } from "./command.ts";
 * console.assert(numberOption({ samples: "8" }, "samples") === 8);
 * ```
 */
export function numberOption(values: Values, name: string): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (typeof text !== "string" || text.trim() === "" || !Number.isFinite(value)) {
    throw new InvalidArgumentError(`--${name} expects a number, got "${text}"`);
  }
  return value;
}
