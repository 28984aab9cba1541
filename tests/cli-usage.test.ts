// Usage errors of the command line, for every command of the table (read from COMMANDS, so a new
// command or option is covered without editing this file): an unknown option, an option without
// its value, a number that is not one, a value not among the choices, an argument the command does
// not take. Each prints exactly one line on stderr that names the option (and the nearest known
// one), no "caused by" and no stack, and exits with status 2 — checked on the real CLI in a
// subprocess, and for every option of every command in process.
import assert from "node:assert/strict";
import { COMMANDS } from "../src/cli/commands.ts";
import { type Command, formatError, type OptionSpec } from "../src/cli/command.ts";
import { main } from "../src/cli/main.ts";
import { InfoDiffError } from "../src/errors.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real command line, in a fresh process. */
async function cli(args: readonly string[]): Promise<Outcome> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: text(output.stdout), stderr: text(output.stderr) };
}

/** The same command line in this process: what main.ts prints for the error it throws. */
async function inProcess(args: readonly string[]): Promise<Outcome> {
  try {
    const code = await main([...args], () => {});
    return { code, stdout: "", stderr: "" };
  } catch (error) {
    if (!(error instanceof InfoDiffError)) throw error;
    const { text, code } = formatError(error);
    return { code, stdout: "", stderr: `${text}\n` };
  }
}

/** Exactly one line on stderr, matching `expected`; nothing on stdout; status 2. */
function assertUsageLine(outcome: Outcome, expected: string | RegExp, what: string): void {
  assert.equal(outcome.code, 2, `${what}: ${outcome.stderr}`);
  assert.equal(outcome.stdout, "", what);
  const lines = outcome.stderr.split("\n");
  assert.equal(lines.length, 2, `${what}: one line, got ${JSON.stringify(outcome.stderr)}`);
  assert.equal(lines[1], "", what);
  assert.doesNotMatch(lines[0], /caused by|TypeError|\bat /, what);
  if (typeof expected === "string") assert.equal(lines[0], expected, what);
  else assert.match(lines[0], expected, what);
}

const optionsOf = (command: Command, test: (spec: OptionSpec) => boolean) =>
  Object.entries(command.options).filter(([, spec]) => test(spec)).map(([name]) => name);

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A typo of an option of the command: its longest name with its first two unlike neighbours swapped. */
function typoOf(command: Command): { typo: string; meant: string } {
  const meant = Object.keys(command.options).reduce((a, b) => b.length > a.length ? b : a);
  const k = [...meant].findIndex((c, i) => i > 0 && c !== meant[i + 1]);
  const typo = meant.slice(0, k) + meant[k + 1] + meant[k] + meant.slice(k + 2);
  assert.notEqual(typo, meant, command.name);
  return { typo, meant };
}

/** The one-line message of an unknown choice, far from every choice (no suggestion). */
function unknownChoice(command: string, name: string, spec: OptionSpec, value: string): string {
  const listed = `${spec.list ? "some" : "one"} of ${spec.choices!.join(", ")}`;
  return `infodiff ${command}: unknown ${
    spec.what ?? name
  } "${value}" for --${name}; expected ${listed}`;
}

Deno.test("cli usage errors, real CLI: every command, one line naming the option, exit 2", async () => {
  for (const command of COMMANDS) {
    const name = command.name;
    const { typo, meant } = typoOf(command);
    assertUsageLine(
      await cli([name, `--${typo}`, "x"]),
      `infodiff ${name}: unknown option --${typo}; did you mean --${meant}?`,
      `${name} unknown option`,
    );
    const [valued] = optionsOf(command, (s) => s.type === "string");
    assertUsageLine(
      await cli([name, `--${valued}`]),
      new RegExp(`^infodiff ${name}: --${escape(valued)} needs a value( \\(.+\\))?$`),
      `${name} missing value`,
    );
    const [number] = optionsOf(command, (s) => s.number === true);
    if (number !== undefined) {
      assertUsageLine(
        await cli([name, `--${number}`, "many"]),
        `infodiff ${name}: --${number} expects a number, got "many"`,
        `${name} bad number`,
      );
    }
    const [choice] = optionsOf(command, (s) => s.choices !== undefined);
    if (choice !== undefined) {
      assertUsageLine(
        await cli([name, `--${choice}`, "zzzz"]),
        unknownChoice(name, choice, command.options[choice], "zzzz"),
        `${name} unknown choice`,
      );
    }
  }
});

Deno.test("cli usage errors, in process: every option of every command", async () => {
  for (const command of COMMANDS) {
    const name = command.name;
    const run = (...args: string[]) => inProcess([name, ...args]);
    assertUsageLine(
      await run("--zzzzzzzz"),
      `infodiff ${name}: unknown option --zzzzzzzz; see infodiff ${name} --help`,
      `${name} far unknown option`,
    );
    for (const option of optionsOf(command, (s) => s.type === "string")) {
      const other = Object.keys(command.options).find((o) => o !== option) ?? "help";
      assertUsageLine(
        await run(`--${option}`, `--${other}`),
        new RegExp(
          `^infodiff ${name}: --${escape(option)} needs a value( \\(.+\\))?, got the option ` +
            `--${escape(other)}$`,
        ),
        `${name} --${option} before another option`,
      );
    }
    for (const option of optionsOf(command, (s) => s.type === "boolean")) {
      assertUsageLine(
        await run(`--${option}=yes`),
        `infodiff ${name}: --${option} takes no value, got "yes"`,
        `${name} --${option}=yes`,
      );
    }
    for (const option of optionsOf(command, (s) => s.number === true)) {
      for (const bad of ["many", "", "1e400", "NaN"]) {
        assertUsageLine(
          await run(`--${option}`, bad),
          `infodiff ${name}: --${option} expects a number, got "${bad}"`,
          `${name} --${option} ${bad}`,
        );
      }
    }
    for (const option of optionsOf(command, (s) => s.choices !== undefined)) {
      const spec = command.options[option];
      assertUsageLine(
        await run(`--${option}`, "zzzz"),
        unknownChoice(name, option, spec, "zzzz"),
        `${name} --${option} zzzz`,
      );
      const meant = spec.choices![spec.choices!.length - 1];
      const listed = `${spec.list ? "some" : "one"} of ${spec.choices!.join(", ")}`;
      assertUsageLine(
        await run(`--${option}`, `${meant}${meant.at(-1)}`),
        `infodiff ${name}: unknown ${spec.what ?? option} "${meant}${
          meant.at(-1)
        }" for --${option}; did you mean ${meant}? (${listed})`,
        `${name} --${option} near ${meant}`,
      );
    }
    if (!command.takesArguments) {
      assertUsageLine(
        await run("stray"),
        `infodiff ${name}: unexpected argument "stray"; ${name} takes options only (see ` +
          `infodiff ${name} --help)`,
        `${name} stray argument`,
      );
    }
  }
});

Deno.test("cli usage errors: a repeated option, a list choice, unknown commands", async () => {
  assertUsageLine(
    await inProcess(["total", "--seed", "1", "--seed", "2"]),
    "infodiff total: --seed is given twice; give it once",
    "repeated",
  );
  // each of a comma-separated list is checked
  assertUsageLine(
    await inProcess(["localize", "--methods", "attention,magic"]),
    /^infodiff localize: unknown method "magic" for --methods; expected some of /,
    "list",
  );
  // an option of another command is named as unknown here
  assertUsageLine(
    await inProcess(["total", "--word", "red"]),
    "infodiff total: unknown option --word; see infodiff total --help",
    "other command's option",
  );
  // nll has no contrast, so no estimator
  assertUsageLine(
    await inProcess(["nll", "--estimator", "standard"]),
    "infodiff nll: unknown option --estimator; see infodiff nll --help",
    "nll --estimator",
  );
  assertUsageLine(
    await cli(["infoo"]),
    'infodiff: unknown command "infoo"; did you mean info?',
    "near command",
  );
  assertUsageLine(
    await inProcess(["frobnicate"]),
    `infodiff: unknown command "frobnicate"; expected one of ${
      COMMANDS.map((c) => c.name).join(", ")
    }`,
    "far command",
  );
  assertUsageLine(
    await inProcess(["--modle", "x", "info"]),
    "infodiff: the command comes first, got the option --modle; see infodiff --help for the commands",
    "option first",
  );
});

Deno.test("cli usage: a negative number is a value, and =VALUE takes one starting with -", async () => {
  // refused for its range by the command, not taken for a forgotten value
  assertUsageLine(
    await inProcess([
      "total",
      "--model",
      "/no/model",
      "--image",
      "i",
      "--prompt",
      "p",
      "--samples",
      "-3",
    ]),
    "infodiff: samples must be a positive integer, got -3",
    "negative samples",
  );
  assertUsageLine(
    await inProcess(["total", "--prompt", "-p", "--model", "m"]),
    "infodiff total: --prompt needs a value, got the option -p",
    "value that looks like an option",
  );
});

Deno.test("cli --help: still the usage, every option of each command named in it", async () => {
  for (const command of COMMANDS) {
    for (const [option, spec] of Object.entries(command.options)) {
      const named = new RegExp(`(--${escape(option)}|-${spec.short ?? "\0"})\\b`);
      assert.match(command.usage, named, `${command.name} --help names --${option}`);
    }
  }
  // --help wins over a wrong option next to it
  const help = await cli(["info", "--modle", "--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^infodiff info --model DIR/);
  assert.equal(help.stderr, "");
});

Deno.test("cli: today's pipeline options and the image size reach the model and its provenance, and are refused where they do not apply", async () => {
  const { main } = await import("../src/cli/main.ts");
  const base = [
    "total",
    "--image",
    "fixtures/images/test-64.png",
    "--prompt",
    "a red circle",
    "--samples",
    "8",
    "--device",
    "cpu",
    "--json",
    "--quiet",
  ];
  const lines: string[] = [];
  const code = await main([
    ...base,
    "--model",
    "fixtures/models/exact-flux",
    "--embedded-guidance",
    "3.5",
  ], (l) => lines.push(l));
  assert.equal(code, 0);
  assert.match(lines.join("\n"), /"guidance":\s*3\.5/);
  await assert.rejects(
    () =>
      main(
        [...base, "--model", "fixtures/models/tiny-flux-schnell", "--embedded-guidance", "3.5"],
        () => {},
      ),
    /guidance/,
  );
  // the image size: recorded where it is not the folder's own, refused where it does not fit
  const sized: string[] = [];
  assert.equal(
    await main(
      [...base, "--model", "fixtures/models/tiny-flux", "--resolution", "48"],
      (l) => sized.push(l),
    ),
    0,
  );
  assert.match(sized.join("\n"), /"resolution":\s*48/);
  await assert.rejects(
    () => main([...base, "--model", "fixtures/models/tiny-flux", "--resolution", "40"], () => {}),
    /resolution 40: .* multiples of 16/,
  );
});
