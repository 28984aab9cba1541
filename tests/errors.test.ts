// Error rules: typed errors that keep their cause, no raw RangeError/Error from the library, one
// replaceable warning hook, and command-line usage errors with exit status 2 and no stack trace.
import assert from "node:assert/strict";
import {
  DatasetError,
  describeError,
  InfoDiffError,
  InvalidArgumentError,
  InvalidImageError,
  ModelLoadError,
  PromptError,
} from "../src/errors.ts";
import { setWarningHandler } from "../src/warnings.ts";
import { imageArray, type ImageInput } from "../src/models/denoiser.ts";
import { readModelFolder } from "../src/models/sd/folder.ts";
import { loadTokenizer } from "../src/models/sd/tokenizer.ts";
import { loadImagePixels } from "../src/images/load-image.ts";
import { readCocoIt } from "../src/datasets/coco-it.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { main } from "../src/cli/main.ts";

Deno.test("wrapped errors keep the lower error as cause", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/model_index.json`, "{ not json");
  const folder = await readModelFolder(dir).catch((e) => e);
  assert.ok(folder instanceof ModelLoadError);
  assert.ok(folder.cause instanceof SyntaxError, String(folder.cause));
  assert.match(describeError(folder), /caused by: SyntaxError/);

  const image = await loadImagePixels(new Uint8Array([1, 2, 3]), 4, 4).catch((e) => e);
  assert.ok(image instanceof InvalidImageError);
  assert.ok(image.cause instanceof Error);

  await Deno.writeTextFile(`${dir}/table.json`, "[");
  const table = await readCocoIt(`${dir}/table.json`).catch((e) => e);
  assert.ok(table instanceof DatasetError, String(table));
  assert.ok(table.cause instanceof Error);
});

Deno.test("an image path that is a folder or missing says so, not only 'could not decode'", async () => {
  const dir = await Deno.makeTempDir();
  const refused = async (path: string, why: RegExp) => {
    const error = await loadImagePixels(path, 4, 4).catch((e) => e);
    assert.ok(error instanceof InvalidImageError, String(error));
    assert.match(error.message, why);
    assert.ok(error.cause instanceof Error, "libvips's own message is kept as the cause");
  };
  await refused(dir, new RegExp(`^image "${dir}" is a folder, not a file; expected`));
  await refused(`${dir}/gone.png`, new RegExp(`^image "${dir}/gone.png" does not exist; expected`));
  await Deno.writeTextFile(`${dir}/a.png`, "text");
  await refused(`${dir}/a.png`, new RegExp(`^could not decode image "${dir}/a.png"; expected`));
});

Deno.test("pixel arrays outside [−1, 1] are refused with the value and the scale to use", async () => {
  // before: an array of 5s (or of 0…255 values) was VAE-encoded as if it were an image
  const model = await loadModel("fixtures/models/sd-vpred", { device: "cpu" });
  try {
    const { width, height } = model.imageSize;
    const pixels = (f: (i: number) => number) =>
      Float32Array.from({ length: 3 * width * height }, (_, i) => f(i));
    for (
      const [array, value, range] of [
        [pixels(() => 5), "5 at index 0", "from 5 to 5"],
        [pixels((i) => i % 256), "2 at index 2", "from 0 to 255"],
        [pixels((i) => (i === 7 ? -1.6 : 0)), "-1.600000023841858 at index 7", "from -1.6"],
      ] as const
    ) {
      await assert.rejects(
        () => model.prepare(array),
        (e: Error) =>
          e instanceof InvalidImageError &&
          e.message.includes(`has ${value} (its values run ${range}`) &&
          e.message.includes("expected pixels in [−1, 1]") && e.message.includes("v / 127.5 − 1"),
      );
    }
    // a generated picture's small overshoot is still an image
    const prepared = await model.prepare(pixels((i) => (i % 2 ? 1.04 : -1.04)));
    assert.equal(prepared.length, model.shape[0] * model.shape[1] * model.shape[2]);
  } finally {
    await model.dispose();
  }
});

Deno.test("a directory where model_index.json should be is a ModelLoadError", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/model_index.json`);
  const error = await readModelFolder(dir).catch((e) => e);
  assert.ok(error instanceof ModelLoadError, String(error));
});

Deno.test("PerTokenResult.token of a word not in the prompt is a PromptError", async () => {
  const model = exampleOracle();
  const result = await model.info(model.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT)
    .samples(2).perToken();
  assert.throws(() => result.token("blue"), PromptError);
});

Deno.test("library warnings go through the replaceable hook", async () => {
  const seen: string[] = [];
  const previous = setWarningHandler((message) => seen.push(message));
  const model = await loadModel("fixtures/models/sd-vpred", { device: "cpu" });
  try {
    const data = new Float32Array(model.shape[0] * model.shape[1] * model.shape[2]);
    const prompt = Array.from({ length: 90 }, () => "red").join(" ");
    await model.info(data).given(prompt).samples(1).batchSize(32).allowTruncation().perToken();
    // the tokenizer itself stays quiet: one line per query, not one per encoded context
    (await loadTokenizer("fixtures/models/sd-vpred/tokenizer")).inputIds(prompt);
  } finally {
    setWarningHandler(previous);
    await model.dispose();
  }
  assert.equal(seen.length, 1, seen.join("\n"));
  assert.match(seen[0], /loses 15 word\(s\) that lie past its context/);
});

Deno.test("library code raises no raw RangeError or Error and calls console.warn only in the hook", async () => {
  const offenders: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts")) {
        const code = (await Deno.readTextFile(path)).split("\n").filter((l) =>
          !/^\s*(\*|\/\/)/.test(l)
        );
        code.forEach((line, i) => {
          if (/new (Range|Type)?Error\(/.test(line)) {
            offenders.push(`${path}:${i + 1}: ${line.trim()}`);
          }
          if (/console\.warn\(/.test(line) && path !== "src/warnings.ts") {
            offenders.push(`${path}:${i + 1}: ${line.trim()}`);
          }
        });
      }
    }
  };
  await walk("src");
  assert.deepEqual(offenders, []);
});

Deno.test("command line: usage errors are InvalidArgumentErrors", async () => {
  for (const args of [["--modle", "x", "info"], ["info", "--model"], ["frobnicate"], ["info"]]) {
    await assert.rejects(() => main(args), InvalidArgumentError, args.join(" "));
  }
  const file = await Deno.makeTempFile();
  for (const bad of [["--samples", "0"], ["--seed", "0.5"], ["--out", file]]) {
    // refused before the (missing) model folder is even looked at
    await assert.rejects(
      () => main(["info", "--model", "/no/such/model", "--image", "i", "--prompt", "p", ...bad]),
      InvalidArgumentError,
      bad.join(" "),
    );
  }
  await assert.rejects(
    () => main(["info", "--model", "m", "--image", "i", "--prompt", "p", "--device", "gpu"]),
    (e: unknown) => e instanceof InvalidArgumentError && /webgpu/.test((e as Error).message),
  );
});

Deno.test("command line: a usage error exits with 2 and one message, no stack trace", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "info", "--modle", "x"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 2);
  // one line naming the option and the nearest known one (tests/cli-usage.test.ts: every command)
  assert.equal(stderr, "infodiff info: unknown option --modle; did you mean --model?\n");
  assert.doesNotMatch(stderr, /caused by/);
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  assert.ok(new InvalidArgumentError("x") instanceof InfoDiffError);
});

Deno.test("command line: an --out folder that cannot be made is refused before anything runs", async () => {
  // before: demo computed the whole table, then failed making the folder with a raw NotADirectory
  const file = await Deno.makeTempFile();
  const lines: string[] = [];
  const error = await main(
    ["demo", "--oracle", "--samples", "4", "--out", `${file}/demo`],
    (line) => lines.push(line),
  ).catch((e) => e);
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.match(
    error.message,
    new RegExp(`^--out ${file}/demo cannot be written; expected a folder`),
  );
  assert.ok(error.cause instanceof Error, "the system's refusal is the cause");
  assert.deepEqual(lines, [], "nothing was computed or printed");
  // checked before the model loads: the missing model folder is not what is reported
  await assert.rejects(
    () =>
      main([
        "info",
        "--model",
        `${file}.none`,
        "--image",
        "x.png",
        "--prompt",
        "p",
        "--out",
        `${file}/x`,
      ]),
    (e: Error) =>
      e instanceof InvalidArgumentError && e.message.startsWith(`--out ${file}/x cannot`),
  );
});

Deno.test("command line: generate and invert check their --out file's folder before the model runs", async () => {
  // before: DDIM ran to the end, then writing under a file failed with a raw NotADirectory
  const file = await Deno.makeTempFile();
  const common = [
    "--model",
    "fixtures/models/pixel-space",
    "--prompt",
    "red circle",
    "--steps",
    "2",
  ];
  for (
    const args of [
      ["generate", ...common, "--out", `${file}/x.png`],
      ["invert", ...common, "--image", "fixtures/images/test-16.png", "--out", `${file}/x.npy`],
    ]
  ) {
    const out = args.at(-1)!;
    await assert.rejects(
      () => main(args, () => {}),
      (e: Error) =>
        e instanceof InvalidArgumentError &&
        e.message.startsWith(`--out ${out}: its folder ${file} is a file; expected a folder`),
      args[0],
    );
  }
  const folder = `${await Deno.makeTempDir()}/a.png`;
  await Deno.mkdir(folder);
  await assert.rejects(
    () => main(["generate", ...common, "--out", folder], () => {}),
    (e: Error) =>
      e instanceof InvalidArgumentError &&
      e.message === `--out ${folder} is a folder; expected a file path`,
  );
});

Deno.test("command line: an unwritable --out exits with 2 before the run, one message and its cause, no stack trace", async () => {
  // a folder Deno may not write (as root, mode bits would not stop the write; --allow-write does)
  const [allowed, out] = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-sys",
      "--allow-ffi",
      `--allow-write=${allowed}`,
      "src/cli/main.ts",
      ...["demo", "--oracle", "--samples", "4", "--out", out],
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const [stdout, stderr] = [output.stdout, output.stderr].map((b) => new TextDecoder().decode(b));
  assert.equal(output.code, 2, stderr);
  assert.equal(stdout, "", "nothing was computed");
  assert.match(
    stderr,
    new RegExp(
      `^infodiff: --out ${out} cannot be written; expected a folder .*\ncaused by: NotCapable: Requires write access`,
    ),
  );
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  assert.deepEqual([...Deno.readDirSync(out)], [], "no probe left behind");
});

Deno.test("pid with resamples that are not a positive integer is an InvalidArgumentError, not NaN errors", async () => {
  const model = exampleOracle();
  const q = model.info(model.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT).samples(2);
  for (const resamples of [-1, 0, 2.5]) {
    await assert.rejects(() => q.pid("red", "circle", { resamples }), InvalidArgumentError);
  }
});

Deno.test("a tagged image array says what it holds; a malformed tag is a typed error", async () => {
  const pixels = new Float32Array(3 * 8 * 8);
  assert.deepEqual(imageArray({ pixels }), { array: pixels, holds: "pixels" });
  assert.deepEqual(imageArray({ data: pixels }), { array: pixels, holds: "data" });
  assert.deepEqual(imageArray(pixels), { array: pixels, holds: "either" });
  for (const input of ["a.png", new Uint8Array(4), { toBuffer: () => 0 }]) {
    assert.equal(imageArray(input), undefined);
  }
  assert.throws(
    () => imageArray({ pixels, data: pixels } as unknown as ImageInput),
    (e: Error) => e instanceof InvalidImageError && /both `pixels` and `data`/.test(e.message),
  );
  assert.throws(
    () => imageArray({ pixels: [0, 1] } as unknown as ImageInput),
    (e: Error) =>
      e instanceof InvalidImageError &&
      /\{ pixels \} holds object; expected a Float32Array/.test(e.message),
  );
  // a latent model: { data } must have the latent's length, not the pixels'
  const model = await loadModel("fixtures/models/sd-vpred", { device: "cpu" });
  try {
    const { width, height } = model.imageSize;
    const [c, h, w] = model.shape;
    await assert.rejects(
      () => model.prepare({ data: new Float32Array(3 * width * height) }),
      new RegExp(
        `\\{ data \\} has ${3 * width * height} values; expected ${c * h * w} \\(model data`,
      ),
    );
  } finally {
    await model.dispose();
  }
});
