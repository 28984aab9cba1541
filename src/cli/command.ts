/**
 * What a command of the command line is: its options, its usage, what it runs.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { checkDevice, type Device } from "../models/onnx/onnx-model.ts";

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
