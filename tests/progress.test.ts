// Progress as a person sees it: a live bar redrawn in place on a terminal (checked on a real
// pseudo-terminal), a line every N seconds in a log, nothing with --quiet.
import assert from "node:assert/strict";
import { progressReporter } from "../src/cli/progress.ts";

function recorder(terminal: boolean, quiet = false) {
  const out: string[] = [];
  let t = 0;
  const reporter = progressReporter({
    unit: "draws",
    terminal,
    quiet,
    interval: 10,
    write: (s) => out.push(s),
    now: () => t,
  });
  return { out, reporter, at: (ms: number) => t = ms };
}

Deno.test("progress on a terminal: one bar redrawn in place, rate and ETA, a newline at the end", () => {
  const { out, reporter, at } = recorder(true);
  at(1000);
  reporter.update(25, 100);
  at(2000);
  reporter.update(50, 100);
  reporter.finish();
  assert.equal(out.length, 3);
  assert.ok(out[0].startsWith("\r\x1b[2K"), "redraws the same line");
  assert.match(out[1], /█{15}░{15} 50\/100 draws · 25\.0 draws\/s · ETA 2 s$/);
  assert.equal(out[2], "\n");
});

Deno.test("progress in a log: a line every interval and the last one; quiet shows nothing", () => {
  const { out, reporter, at } = recorder(false);
  for (let done = 1; done <= 100; done++) {
    at(done * 500); // 0.5 s per draw: 50 s in all
    reporter.update(done, 100);
  }
  reporter.finish();
  assert.deepEqual(out.map((l) => l.split(" ")[0]), [
    "1/100",
    "21/100",
    "41/100",
    "61/100",
    "81/100",
    "100/100",
  ]);
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r")));
  const quiet = recorder(false, true);
  quiet.reporter.update(1, 2);
  quiet.reporter.update(2, 2);
  quiet.reporter.finish();
  assert.deepEqual(quiet.out, []);
});

const COMMAND = [
  "run",
  "-A",
  "src/cli/main.ts",
  "total",
  "--model",
  "fixtures/models/sd-vpred",
  "--image",
  "fixtures/images/test-64.png",
  "--prompt",
  "a red circle",
  "--samples",
  "24",
  "--batch-size",
  "1",
  "--device",
  "cpu",
];

Deno.test({
  name: "progress on a real pseudo-terminal draws the bar; with stderr to a file it writes lines",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const quoted = [Deno.execPath(), ...COMMAND].map((a) => `'${a}'`).join(" ");
    const tty = await new Deno.Command("script", {
      args: ["-qec", quoted, "/dev/null"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const screen = new TextDecoder().decode(tty.stdout);
    assert.equal(tty.code, 0, screen + new TextDecoder().decode(tty.stderr));
    const erase = "\r" + String.fromCharCode(27) + "[2K"; // carriage return, erase the line
    assert.ok(screen.includes(erase), "the bar is redrawn in place");
    assert.match(screen, /[█░]{30} \d+\/24 draws/);
    assert.match(screen, /24\/24 draws/);
    const log = await new Deno.Command(Deno.execPath(), {
      args: COMMAND,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(log.stderr);
    assert.ok(!stderr.includes("\r"), "no bar in a log");
    assert.match(stderr.trim().split("\n").at(-1) ?? "", /^24\/24 draws · [\d.]+ draws\/s$/);
    const quiet = await new Deno.Command(Deno.execPath(), {
      args: [...COMMAND, "--quiet"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(quiet.stderr).trim(), "");
  },
});
