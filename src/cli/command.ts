/**
 * What a command of the command line is: its options, its usage, what it runs; and how its
 * arguments are read. A command line that is wrong (an unknown option, an option without its
 * value, a number that is not one, a value not among an option's choices, an unexpected argument)
 * is a {@link UsageError}: printed as one line that names the option (and the nearest known one),
 * exit status 2.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { describeError, InvalidArgumentError } from "../errors.ts";
import { checkDevice, type Device } from "../models/onnx/onnx-model.ts";
import type { PipelineOptions } from "../models/onnx/pipeline.ts";

/** Parsed option values: strings and booleans by option name. */
export type Values = Readonly<Record<string, string | boolean | undefined>>;

/** One option of a command (node's parseArgs form, plus what its value must be). */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** the value must be a finite number (ranges are checked by the command) */
  readonly number?: boolean;
  /** the values it accepts */
  readonly choices?: readonly string[];
  /** what one choice is called in messages (default the option's name) */
  readonly what?: string;
  /** the choices come as a comma-separated list (some of them) */
  readonly list?: boolean;
}

/**
 * A number option: its text must be a finite number.
 *
 * @example
 * ```ts
 * import { NUMBER } from "./command.ts";
 * console.assert(NUMBER.number === true);
 * ```
 */
export const NUMBER: OptionSpec = Object.freeze({ type: "string", number: true });

/**
 * An option whose value is one of `choices` (`what` names one in messages).
 *
 * @example
 * ```ts
 * import { choiceOf } from "./command.ts";
 * console.assert(choiceOf(["shared", "each"]).choices?.length === 2);
 * ```
 */
export function choiceOf(choices: readonly string[], what?: string): OptionSpec {
  return Object.freeze({ type: "string", choices, ...(what ? { what } : {}) });
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
  /** true when it takes positional arguments (files, a hub id); the others refuse any */
  readonly takesArguments?: boolean;
  /** its options (help is added to every command) */
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** runs it with the parsed values and positional arguments */
  run(values: Values, positionals: readonly string[], log: (line: string) => void): Promise<number>;
}

/**
 * The command line itself is wrong: an unknown command or option, an option without its value, a
 * number that is not one, a value not among the option's choices, an argument the command does
 * not take. {@link formatError} prints it as one line (no cause, no stack); exit status 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./command.ts";
 * import { InvalidArgumentError } from "../errors.ts";
 * const e = new UsageError("unknown option --modle; did you mean --model?", "info");
 * console.assert(e instanceof InvalidArgumentError && e.command === "info");
 * ```
 */
export class UsageError extends InvalidArgumentError {
  /** the command whose arguments were wrong (none: the command itself was) */
  readonly command?: string;

  /**
   * Creates the error.
   * @param message one line: what was wrong and what was expected
   * @param command the command whose arguments were wrong
   */
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

/**
 * What the command line prints for an error, and its exit status: a usage error is one line,
 * `infodiff <command>: <message>`, status 2; another argument error its message and causes,
 * status 2; any other failure of the run its message and causes, status 1.
 *
 * @example
 * ```ts
 * import { formatError, UsageError } from "./command.ts";
 * const { text, code } = formatError(new UsageError("unknown option --modle; did you mean --model?", "info"));
 * console.assert(text === "infodiff info: unknown option --modle; did you mean --model?" && code === 2);
 * ```
 */
export function formatError(error: Error): { text: string; code: 1 | 2 } {
  if (error instanceof UsageError) {
    return {
      text: `infodiff${error.command ? ` ${error.command}` : ""}: ${error.message}`,
      code: 2,
    };
  }
  return {
    text: `infodiff: ${describeError(error)}`,
    code: error instanceof InvalidArgumentError ? 2 : 1,
  };
}

/**
 * The known name nearest to a mistyped one, when it is close enough to be the one meant: at most
 * one edit (insert, delete, substitute, swap two neighbours) per three characters typed, or the
 * typed text (3+ characters) begins exactly one known name; none when two are equally near.
 *
 * @example
 * ```ts
 * import { nearest } from "./command.ts";
 * console.assert(nearest("modle", ["image", "model", "prompt"]) === "model");
 * console.assert(nearest("batch", ["batch-size", "seed"]) === "batch-size");
 * console.assert(nearest("word", ["model", "json"]) === undefined);
 * ```
 */
export function nearest(typed: string, known: readonly string[]): string | undefined {
  const lower = typed.toLowerCase();
  const prefixed = known.filter((k) => k.startsWith(lower));
  if (lower.length >= 3 && prefixed.length === 1) return prefixed[0];
  const ranked = known.map((name) => ({ name, d: editDistance(lower, name.toLowerCase()) }))
    .sort((a, b) => a.d - b.d);
  const [best, second] = ranked;
  const close = best !== undefined && best.d <= Math.floor(typed.length / 3);
  return close && (second === undefined || second.d > best.d) ? best.name : undefined;
}

/** Optimal-string-alignment distance: a swap of two neighbours (modle → model) is one edit. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The parsed command line of one command. */
export interface ParsedCommandLine {
  /** the options' values (numbers and choices already checked) */
  readonly values: Values;
  /** the positional arguments (only for commands that take them) */
  readonly positionals: readonly string[];
  /** `--help` / `-h` was given: print the usage, check nothing else */
  readonly help: boolean;
}

/**
 * Reads one command's arguments and checks them all before anything runs: every option known,
 * given once, with its value (a value starting with "-" that is not a negative number is taken
 * for a forgotten value; write `--opt=-x` to mean it), numbers numbers, choices among the
 * choices, and positional arguments only where the command takes them.
 *
 * @throws {UsageError} naming the option, and the nearest known one where one is close
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./command.ts";
 * const command = {
 *   name: "demo", summary: "", usage: "", run: () => Promise.resolve(0),
 *   options: { samples: { type: "string", number: true } },
 * } as const;
 * console.assert(parseCommandLine(command, ["--samples", "8"]).values.samples === "8");
 * let message = "";
 * try {
 *   parseCommandLine(command, ["--sampels", "8"]);
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * console.assert(message === "unknown option --sampels; did you mean --samples?");
 * ```
 */
export function parseCommandLine(command: Command, args: readonly string[]): ParsedCommandLine {
  const options: Record<string, OptionSpec> = {
    ...command.options,
    help: { type: "boolean", short: "h" },
  };
  const { values, positionals, tokens } = parseArgs({
    args: [...args],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const fail = (message: string) => new UsageError(message, command.name);
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) {
    return { values: values as Values, positionals, help: true };
  }
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind === "positional" && !command.takesArguments) {
      throw fail(
        `unexpected argument "${token.value}"; ${command.name} takes options only (see ` +
          `infodiff ${command.name} --help)`,
      );
    }
    if (token.kind !== "option") continue;
    const spec = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (spec === undefined) {
      const near = nearest(token.name, Object.keys(options));
      throw fail(
        `unknown option ${token.rawName}; ` +
          (near ? `did you mean --${near}?` : `see infodiff ${command.name} --help`),
      );
    }
    if (seen.has(token.name)) throw fail(`--${token.name} is given twice; give it once`);
    seen.add(token.name);
    checkValue(token.rawName, spec, token.value, token.inlineValue, fail);
  }
  return { values: values as Values, positionals, help: false };
}

/** One option's value: present where it needs one (and only then), a number, one of the choices. */
function checkValue(
  option: string,
  spec: OptionSpec,
  value: string | undefined,
  inline: boolean | undefined,
  fail: (message: string) => UsageError,
): void {
  if (spec.type === "boolean") {
    if (value !== undefined) throw fail(`${option} takes no value, got "${value}"`);
    return;
  }
  const hint = spec.number ? " (a number)" : spec.choices ? ` (${choicesText(spec)})` : "";
  if (value === undefined) throw fail(`${option} needs a value${hint}`);
  // node's own rule, but a negative number is a value: --seed -1 is not a forgotten value
  if (!inline && value.startsWith("-") && !/^-\.?\d/.test(value)) {
    throw fail(`${option} needs a value${hint}, got the option ${value}`);
  }
  if (spec.number) parseNumber(option, value, fail);
  if (!spec.choices) return;
  for (const choice of spec.list ? value.split(",").map((v) => v.trim()) : [value]) {
    checkChoice(option, spec, choice, fail);
  }
}

/** "one of a, b" (or "some of" for a list). */
function choicesText(spec: OptionSpec): string {
  return `${spec.list ? "some" : "one"} of ${(spec.choices ?? []).join(", ")}`;
}

/** A value among the option's choices, or a usage error suggesting the nearest. */
function checkChoice(
  option: string,
  spec: OptionSpec,
  value: string,
  fail: (message: string) => UsageError,
): void {
  const choices = spec.choices ?? [];
  if (choices.includes(value)) return;
  const listed = choicesText(spec);
  const near = nearest(value, choices);
  throw fail(
    `unknown ${spec.what ?? option.replace(/^-+/, "")} "${value}" for ${option}; ` +
      (near === undefined ? `expected ${listed}` : `did you mean ${near}? (${listed})`),
  );
}

/** A number option's text as a number, or a usage error. */
function parseNumber(
  option: string,
  text: string,
  fail = (message: string) => new UsageError(message),
): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw fail(`${option} expects a number, got "${text}"`);
  }
  return value;
}

/**
 * A number option: absent → undefined; not a number → a {@link UsageError}.
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
  return parseNumber(`--${name}`, String(text));
}

/**
 * `--precision SE`: a positive, finite number of nats, checked before any model loads.
 *
 * @example
 * ```ts
 * import { precisionOption } from "./command.ts";
 * console.assert(precisionOption({ precision: "0.1" })?.se === 0.1);
 * console.assert(precisionOption({}) === undefined);
 * ```
 */
export function precisionOption(values: Values): { se: number } | undefined {
  const se = numberOption(values, "precision");
  if (se === undefined) return undefined;
  if (!(se > 0) || !Number.isFinite(se)) {
    throw new InvalidArgumentError(`--precision expects a standard error in nats > 0, got ${se}`);
  }
  return { se };
}

/**
 * `--device` (default auto) and `--device-id` (a CUDA device: refused with cpu or webgpu), checked
 * before any model loads.
 *
 * @example
 * ```ts
 * import { deviceOptions } from "./command.ts";
 * console.assert(deviceOptions({ device: "cuda", "device-id": "1" }).deviceId === 1);
 * ```
 */
export function deviceOptions(values: Values): { device: Device; deviceId?: number } {
  const device = checkDevice(values.device ?? "auto");
  const deviceId = numberOption(values, "device-id");
  if (deviceId !== undefined && (!Number.isInteger(deviceId) || deviceId < 0)) {
    throw new InvalidArgumentError(`--device-id expects an integer ≥ 0, got ${deviceId}`);
  }
  if (deviceId !== undefined && (device === "cpu" || device === "webgpu")) {
    throw new InvalidArgumentError(
      `--device-id selects a CUDA device; --device ${device} takes none`,
    );
  }
  return { device, deviceId };
}

/**
 * How today's pipelines are run, as the diffusers pipelines take it: FLUX.1-dev's embedded
 * guidance (`guidance_scale`, default 1.0; recorded in every result), T5's `max_sequence_length`
 * (SD 3, FLUX.1), SDXL's unconditional (`model`: as `force_zeros_for_empty_prompt` says), and the
 * image size the model is run at (`height`/`width`; default what the export or its pipeline says:
 * 1024 for SDXL, SD 3 and FLUX.1).
 */
export const PIPELINE_OPTIONS = Object.freeze({
  "embedded-guidance": NUMBER,
  "max-sequence-length": NUMBER,
  unconditional: choiceOf(["model", "zeros", "encoded"], "unconditional"),
  resolution: NUMBER,
});

/** The usage line of {@link PIPELINE_OPTIONS}. */
export const PIPELINE_USAGE =
  "[--embedded-guidance G (FLUX.1-dev)] [--max-sequence-length N (T5)] [--unconditional model|zeros|encoded (SDXL)] [--resolution PX]";

/** The model's load options the command line sets: the pipeline's, and the image size. */
export interface CommandLoadOptions extends PipelineOptions {
  /** the image's side in pixels, as `loadModel`'s `resolution` */
  readonly resolution?: number;
}

/**
 * The pipeline's load options from the command line; the model refuses those it has no use for
 * (guidance on FLUX.1-schnell, a T5 length on SDXL, a resolution that is not a multiple of its
 * VAE's downsampling and patches), naming them.
 *
 * @example
 * ```ts
 * import { pipelineOptions } from "./command.ts";
 * console.assert(pipelineOptions({ "embedded-guidance": "3.5" }).guidance === 3.5);
 * console.assert(pipelineOptions({ resolution: "512" }).resolution === 512);
 * console.assert(Object.keys(pipelineOptions({})).length === 0);
 * ```
 */
export function pipelineOptions(values: Values): CommandLoadOptions {
  const guidance = numberOption(values, "embedded-guidance");
  const maxSequenceLength = numberOption(values, "max-sequence-length");
  const unconditional = values.unconditional as "model" | "zeros" | "encoded" | undefined;
  const resolution = numberOption(values, "resolution");
  return {
    ...(guidance === undefined ? {} : { guidance }),
    ...(maxSequenceLength === undefined ? {} : { maxSequenceLength }),
    ...(unconditional === undefined ? {} : { unconditional }),
    ...(resolution === undefined ? {} : { resolution }),
  };
}

/**
 * A string option the command cannot run without.
 *
 * @throws {InvalidArgumentError} naming the option and the command's help
 *
 * @example
 * ```ts
 * import { required } from "./command.ts";
 * console.assert(required({ model: "m" }, "total", "model") === "m");
 * ```
 */
export function required(values: Values, command: string, name: string): string {
  const value = values[name];
  if (typeof value !== "string") {
    throw new InvalidArgumentError(
      `${command} needs --${name}; see infodiff ${command} --help`,
    );
  }
  return value;
}
