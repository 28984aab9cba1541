// The study runner and its results file: each fault a week-long study can meet gives the promised
// behaviour (settings or model mismatch, headerless files, a crash mid-line or mid-rewrite, two
// writers, fixed data, a lost newline, model runtime errors, a bad path, 100k-row resume).
import assert from "node:assert/strict";
import { formatProgress, runStudy, type StudyDescription } from "../src/studies/runner.ts";
import { ModelRuntimeError, PromptError, ResultsFileError } from "../src/errors.ts";
import { setWarningHandler } from "../src/warnings.ts";
import { loadImagePixels, resizedImage } from "../src/images/load-image.ts";
import { loadSharp } from "../src/images/sharp.ts";

const square = (n: number) => Promise.resolve(n * n);
const id = (n: number) => `item-${n}`;
const model = { name: "m", backend: "test", sha256: "a".repeat(64) };
const description: StudyDescription = {
  study: "squares",
  settings: { samples: 2, seed: 1 },
  model,
};

const lines = async (file: string) =>
  (await Deno.readTextFile(file)).trim().split("\n").map((l) => JSON.parse(l));

/** Runs `body` with warnings collected. */
async function collectingWarnings<T>(body: () => Promise<T>): Promise<[T, string[]]> {
  const seen: string[] = [];
  const previous = setWarningHandler((m) => seen.push(m));
  try {
    return [await body(), seen];
  } finally {
    setWarningHandler(previous);
  }
}

Deno.test("runner: a header, then rows as they finish; a rerun resumes without recomputing", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  const calls: number[] = [];
  const work = (n: number) => {
    calls.push(n);
    if (n === 3) throw new Error("crash"); // a bug: stops the study
    return square(n);
  };
  await assert.rejects(
    () => runStudy([1, 2, 3, 4], id, work, { results: file, description }),
    /crash/,
  );
  const [header, ...rows] = await lines(file);
  assert.equal(header.format, "infodiff-results");
  assert.equal(header.study, "squares");
  assert.deepEqual(header.settings, { samples: 2, seed: 1 });
  assert.deepEqual(header.model, model);
  assert.match(header.infodiff, /^\d+\.\d+\.\d+/);
  assert.deepEqual(rows.map((l) => l.id), ["item-1", "item-2"]); // finished items survived
  calls.length = 0;
  const run = await runStudy([1, 2, 3, 4], id, (n) => {
    calls.push(n);
    return square(n);
  }, { results: file, description });
  assert.deepEqual(run.results.map((r) => r.result), [1, 4, 9, 16]);
  assert.equal(run.resumed, 2);
  assert.deepEqual(calls, [3, 4]);
  await assert.rejects(Deno.stat(`${file}.lock`), Deno.errors.NotFound, "the lock is released");
});

Deno.test("runner: resuming with other settings or another model is refused, saying what differs", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  await runStudy([1, 2], id, square, { results: file, description });
  const other = { ...description, settings: { samples: 16, seed: 99 } };
  await assert.rejects(
    () => runStudy([1, 2], id, square, { results: file, description: other }),
    (e: Error) =>
      e instanceof ResultsFileError && /samples is 2 there, 16 here/.test(e.message) &&
      /seed is 1 there, 99 here/.test(e.message),
  );
  const otherModel = { ...description, model: { ...model, sha256: "b".repeat(64) } };
  await assert.rejects(
    () => runStudy([1, 2], id, square, { results: file, description: otherModel }),
    (e: Error) => e instanceof ResultsFileError && /the model is m/.test(e.message),
  );
  await assert.rejects(
    () =>
      runStudy([1, 2], id, square, {
        results: file,
        description: { ...description, study: "cubes" },
      }),
    /study is "squares" there, "cubes" here/,
  );
  // on purpose: the rows are reused, with a warning that says what differs
  const [run, warnings] = await collectingWarnings(() =>
    runStudy([1, 2], id, () => Promise.reject(new Error("not rerun")), {
      results: file,
      description: other,
      reuse: "any",
    })
  );
  assert.equal(run.resumed, 2);
  assert.match(warnings.join("\n"), /samples is 2 there, 16 here/);
});

Deno.test("runner: a file without a header is not resumed from unless asked", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(file, '{"id":"item-1","ok":true,"result":1}\n');
  await assert.rejects(() => runStudy([1], id, square, { results: file }), /no infodiff header/);
  const [run] = await collectingWarnings(() =>
    runStudy([1], id, square, { results: file, reuse: "any" })
  );
  assert.equal(run.resumed, 1);
});

Deno.test("runner: a line cut short by a crash is removed atomically and recomputed", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  await runStudy([1], id, square, { results: file, description });
  const whole = await Deno.readTextFile(file);
  await Deno.writeTextFile(file, whole + '{"id":"item-2","ok":tr');
  const run = await runStudy([1, 2], id, square, { results: file, description });
  assert.deepEqual(run.results.map((r) => r.result), [1, 4]);
  assert.equal(run.resumed, 1);
  assert.deepEqual((await lines(file)).slice(1).map((l) => l.id), ["item-1", "item-2"]);
  // a broken line in the middle means the file is not ours
  await Deno.writeTextFile(file, whole + "garbage\n" + '{"id":"item-2","ok":true,"result":4}\n');
  await assert.rejects(
    () => runStudy([1], id, square, { results: file, description }),
    /not a JSON line/,
  );
});

Deno.test("runner: a rewrite that dies before its rename leaves every finished row in place", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  await runStudy([1, 2, 3], id, square, { results: file, description });
  const cut = (await Deno.readTextFile(file)) + '{"id":"item-4","ok":tr';
  await Deno.writeTextFile(file, cut);
  // the rewrite's temporary file cannot be made: the repair fails like a kill before the rename
  await Deno.mkdir(`${file}.${Deno.pid}.tmp`);
  await assert.rejects(() => runStudy([1, 2, 3, 4], id, square, { results: file, description }));
  assert.equal(await Deno.readTextFile(file), cut, "the original file is untouched");
  await Deno.remove(`${file}.${Deno.pid}.tmp`);
  const run = await runStudy([1, 2, 3, 4], id, square, { results: file, description });
  assert.equal(run.resumed, 3);
});

Deno.test("runner: a second writer of the same file is refused; a dead writer's lock is taken over", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const first = runStudy([1, 2], id, async (n) => {
    await gate;
    return n;
  }, { results: file, description });
  await new Promise((resolve) => setTimeout(resolve, 20));
  await assert.rejects(
    () => runStudy([1, 2], id, square, { results: file, description }),
    (e: Error) => e instanceof ResultsFileError && /being written by process \d+/.test(e.message),
  );
  release();
  await first;
  // a lock left by a process that no longer runs (pid 2^22 + 1 is above Linux's pid_max default)
  await Deno.writeTextFile(
    `${file}.lock`,
    JSON.stringify({ pid: 4194305, host: Deno.hostname(), started: "2026-01-01T00:00:00Z" }),
  );
  const [run, warnings] = await collectingWarnings(() =>
    runStudy([1, 2], id, square, { results: file, description })
  );
  assert.equal(run.resumed, 2);
  assert.match(warnings.join("\n"), /no longer runs; taking it over/);
});

/**
 * Code for a fresh Deno process that opens `file` for `items` squares as the tests here do,
 * prints "locked" once it holds the lock, and (with `hold`) then works for 100 s on the first item.
 */
function studyCode(file: string, items: number[], hold: boolean): string {
  const runner = JSON.stringify(import.meta.resolve("../src/studies/runner.ts"));
  return `
    const { runStudy } = await import(${runner});
    const run = await runStudy(${JSON.stringify(items)}, (n) => \`item-\${n}\`, async (n) => {
      console.log("locked");
      if (${hold}) await new Promise((resolve) => setTimeout(resolve, 100_000));
      return n * n;
    }, { results: ${JSON.stringify(file)}, description: ${JSON.stringify(description)} });
    console.log(JSON.stringify({ resumed: run.resumed, results: run.results.length }));`;
}

/** Reads `stream` until it has printed `line`; returns what it printed up to there. */
async function readUntil(stream: ReadableStream<Uint8Array>, line: string): Promise<string> {
  const reader = stream.getReader();
  let printed = "";
  while (!printed.split("\n").includes(line)) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the process ended before printing "${line}": ${printed}`);
    printed += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return printed;
}

/** The state letter of a process (R, S, Z, …), read by `cat`: Deno reads /proc only with -A. */
async function processState(pid: number): Promise<string> {
  const output = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`] }).output();
  const stat = new TextDecoder().decode(output.stdout);
  return stat.slice(stat.lastIndexOf(")") + 2)[0];
}

Deno.test({
  name: "runner: a live writer in another process keeps its lock (read without --allow-all)",
  ignore: Deno.build.os === "windows",
  async fn() {
    // before: liveness came from stat(/proc/<pid>), which Deno refuses without --allow-all, so
    // every holder looked dead and a second process took over a running writer's lock
    const file = await Deno.makeTempFile({ suffix: ".jsonl" });
    const writer = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", studyCode(file, [1, 2], true)],
      env: { NO_COLOR: "1" },
      stdout: "piped",
    }).spawn();
    try {
      await readUntil(writer.stdout, "locked");
      await assert.rejects(
        () => runStudy([1, 2], id, square, { results: file, description }),
        (e: Error) =>
          e instanceof ResultsFileError &&
          e.message.includes(`being written by process ${writer.pid}`),
      );
    } finally {
      writer.kill("SIGKILL");
      await writer.stdout.cancel();
      await writer.status;
    }
  },
});

Deno.test({
  name:
    "runner: the lock of a writer killed with kill -9 and not yet reaped (a zombie) is taken over",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // before: a zombie still has /proc/<pid>, so a resume with --allow-all (a notebook's kernel)
    // counted it as running and refused, until the killed writer's parent got round to reaping it
    const file = await Deno.makeTempFile({ suffix: ".jsonl" });
    // sh starts the writer in the background, prints its pid and execs sleep, which never reaps it
    const parent = new Deno.Command("sh", {
      args: [
        "-c",
        '"$0" eval --ext=ts "$1" & echo $!; exec sleep 100',
        Deno.execPath(),
        studyCode(file, [1, 2], true),
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
    }).spawn();
    try {
      const writer = Number((await readUntil(parent.stdout, "locked")).split("\n")[0]);
      Deno.kill(writer, "SIGKILL");
      for (let wait = 0; (await processState(writer)) !== "Z"; wait++) {
        assert.ok(wait < 200, `process ${writer} did not become a zombie`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const resume = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", studyCode(file, [1, 2, 3], false)],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(resume.stderr);
      assert.ok(resume.success, stderr);
      const printed = new TextDecoder().decode(resume.stdout).trim().split("\n");
      assert.deepEqual(JSON.parse(printed.at(-1)!), { resumed: 0, results: 3 });
      assert.match(
        stderr,
        new RegExp(`left by process ${writer}, which no longer runs; taking it over`),
      );
      assert.equal(await processState(writer), "Z", "the writer was still unreaped when resumed");
    } finally {
      parent.kill("SIGKILL");
      await parent.stdout.cancel();
      await parent.status;
    }
  },
});

Deno.test("runner: failed rows are retried by default once the data is fixed", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  const broken = (n: number) =>
    n === 2 ? Promise.reject(new PromptError("word missing")) : square(n);
  const first = await runStudy([1, 2, 3], id, broken, { results: file, description });
  assert.deepEqual(first.failures.map((f) => f.id), ["item-2"]);
  const kept = await runStudy([1, 2, 3], id, square, {
    results: file,
    description,
    retryFailed: false,
  });
  assert.deepEqual(kept.failures.map((f) => f.id), ["item-2"], "retryFailed: false keeps it");
  const fixed = await runStudy([1, 2, 3], id, square, { results: file, description });
  assert.deepEqual(fixed.results.map((r) => r.result), [1, 4, 9]);
  assert.deepEqual(fixed.failures, []);
  assert.equal(fixed.resumed, 2);
});

Deno.test("runner: a model runtime error stops the study with the finished rows on disk", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  const work = (n: number) =>
    n === 3 ? Promise.reject(new ModelRuntimeError("UNet output contains NaN")) : square(n);
  await assert.rejects(
    () => runStudy([1, 2, 3, 4], id, work, { results: file, description }),
    ModelRuntimeError,
  );
  assert.deepEqual((await lines(file)).slice(1).map((l) => [l.id, l.ok]), [
    ["item-1", true],
    ["item-2", true],
  ]);
});

Deno.test("runner: a lost trailing newline is restored, not glued to the next record", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  await runStudy([1, 2], id, square, { results: file, description });
  await Deno.writeTextFile(file, (await Deno.readTextFile(file)).replace(/\n$/, ""));
  const second = await runStudy([1, 2, 3], id, square, { results: file, description });
  assert.equal(second.resumed, 2);
  const third = await runStudy([1, 2, 3], id, () => Promise.reject(new Error("not rerun")), {
    results: file,
    description,
  });
  assert.equal(third.resumed, 3);
  assert.equal((await lines(file)).length, 4);
});

Deno.test("runner: the results path is checked before the first item runs", async () => {
  let ran = 0;
  const work = (n: number) => {
    ran++;
    return square(n);
  };
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    () => runStudy([1], id, work, { results: `${dir}/missing/results.jsonl` }),
    (e: Error) => e instanceof ResultsFileError && /not an existing folder/.test(e.message),
  );
  await assert.rejects(
    () => runStudy([1], id, work, { results: dir }),
    (e: Error) => e instanceof ResultsFileError && /is a folder/.test(e.message),
  );
  await assert.rejects(() => runStudy([1], id, work, { onProgress: "x" as never }), /onProgress/);
  assert.equal(ran, 0);
});

Deno.test("runner: bad rows are reported with what was wrong and skipped, the others go on", async () => {
  const work = (n: number) => {
    if (n % 2 === 0) throw new PromptError(`word "x${n}" is not in the caption`);
    return square(n);
  };
  const run = await runStudy([1, 2, 3, 4, 5], id, work);
  assert.deepEqual(run.results.map((r) => r.id), ["item-1", "item-3", "item-5"]);
  assert.deepEqual(run.failures.map((f) => [f.id, f.kind]), [["item-2", "PromptError"], [
    "item-4",
    "PromptError",
  ]]);
  assert.match(run.failures[0].error, /not in the caption/);
});

Deno.test("runner: a bad image's record names its file and keeps what the decoder said", async () => {
  // before: a study's "fill" resize hands the model a sharp pipeline, and its record read only
  // 'could not decode image <sharp instance>; expected a readable PNG or JPEG'. A study still
  // resizes sharp pipelines made from a file (relations' box crop): they are named by the file
  const dir = await Deno.makeTempDir();
  const text = `${dir}/notes.png`;
  await Deno.writeTextFile(text, "not an image");
  const images = [dir, `${dir}/missing.png`, text, "fixtures/images/test-16.png"];
  const results = `${dir}/out.jsonl`;
  const sharp = await loadSharp();
  const decode = async (path: string) =>
    (await loadImagePixels(await resizedImage(sharp(path), 8, 8, "fill"), 8, 8)).length;
  const run = await runStudy(images, (path) => path, decode, { results, description });
  assert.deepEqual(run.results.map((r) => r.result), [3 * 8 * 8]);
  const expected = [
    `image "${dir}" (a sharp pipeline) is a folder, not a file; expected a readable PNG or JPEG\n` +
    "caused by: Error: Input file contains unsupported image format",
    `image "${dir}/missing.png" (a sharp pipeline) does not exist; expected a readable PNG or ` +
    `JPEG\ncaused by: Error: Input file is missing: ${dir}/missing.png`,
    `could not decode image "${text}" (a sharp pipeline); expected a readable PNG or JPEG\n` +
    "caused by: Error: Input file contains unsupported image format",
  ];
  assert.deepEqual(
    run.failures.map((f) => [f.kind, f.error]),
    expected.map((e) => ["InvalidImageError", e]),
  );
  // the file keeps them as written
  const stored = (await lines(results)).filter((r) => r.ok === false).map((r) => r.error);
  assert.deepEqual(stored, expected);
});

Deno.test("runner: shards partition the items; progress counts and rate; duplicate ids", async () => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  const seen: string[][] = [];
  for (let index = 0; index < 3; index++) {
    const run = await runStudy(items, id, square, { shard: { index, count: 3 } });
    seen.push(run.results.map((r) => r.id));
  }
  assert.deepEqual(seen.flat().sort(), items.map(id).sort());
  assert.equal(new Set(seen.flat()).size, 10);
  const progress: string[] = [];
  await runStudy([1, 2], id, square, { onProgress: (p) => progress.push(formatProgress(p)) });
  assert.match(progress[1], /^2\/2 done \(0 resumed, 0 bad\)/);
  await assert.rejects(
    () => runStudy([1], id, square, { shard: { index: 3, count: 3 } }),
    /0 ≤ index < count/,
  );
  await assert.rejects(() => runStudy([1, 1], id, square), /occurs twice/);
});

Deno.test("runner: a 100k-row file resumes every row and recomputes none", async () => {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  const n = 100_000;
  const items = Array.from({ length: n }, (_, i) => i);
  await runStudy(items, id, (i) => Promise.resolve(i), { results: file, description });
  const run = await runStudy(items, id, () => Promise.reject(new Error("not rerun")), {
    results: file,
    description,
  });
  assert.equal(run.resumed, n);
  assert.equal(run.results[n - 1].result, n - 1);
});
