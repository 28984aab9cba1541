// The cluster examples: their syntax, and the commands they run, run here under the environment
// the scheduler would set (Slurm job array, Kubernetes Indexed Job), then merged.
import assert from "node:assert/strict";
import { pythonWith, PYYAML } from "./helpers.ts";

const root = new URL("..", import.meta.url).pathname;
const PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys"];

async function run(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(args[0], {
    args: args.slice(1),
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  return { code: output.code, text };
}

Deno.test("examples: the Slurm script is valid bash and runs the shard script and the merge", async () => {
  const { code, text } = await run(["bash", "-n", "examples/slurm-localization.sh"]);
  assert.equal(code, 0, text);
  const script = await Deno.readTextFile(`${root}examples/slurm-localization.sh`);
  assert.match(script, /--array=0-\$\(\(SHARDS - 1\)\)/);
  assert.match(script, /examples\/shard-study\.ts --shard auto/);
  assert.match(script, /src\/cli\/main\.ts merge \$OUT\/shard-\*-of-\$SHARDS\.jsonl -o/);
  assert.match(script, /--dependency=afterok/);
});

const pyyaml = await pythonWith("examples: the Kubernetes manifest read by PyYAML", PYYAML);

Deno.test({
  name:
    "examples: the Kubernetes manifest parses: an Indexed Job with the shard count, and a merge",
  ignore: pyyaml.ignore,
  async fn() {
    const parse = await run([
      pyyaml.interpreter(),
      "-c",
      "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
      "examples/kubernetes-localization.yaml",
    ]);
    assert.equal(parse.code, 0, parse.text);
    const [job, merge] = JSON.parse(parse.text);
    assert.equal(job.spec.completionMode, "Indexed");
    const container = job.spec.template.spec.containers[0];
    const count = container.env.find((e: { name: string }) => e.name === "INFODIFF_SHARD_COUNT");
    assert.equal(Number(count.value), job.spec.completions);
    assert.deepEqual(container.command.slice(-5), [
      "examples/shard-study.ts",
      "--shard",
      "auto",
      "--out",
      "/results/localization",
    ]);
    assert.match(merge.spec.template.spec.containers[0].command[2], /main\.ts merge .*-o /);
  },
});

Deno.test("examples: shards under Slurm and Kubernetes environments, then merged into one complete file", async () => {
  const out = await Deno.makeTempDir();
  const study = (env: Record<string, string>) =>
    run([
      Deno.execPath(),
      "run",
      ...PERMISSIONS,
      "examples/shard-study.ts",
      "--shard",
      "auto",
      "--out",
      out,
      "--oracle",
      "--scenes",
      "6",
      "--samples",
      "4",
    ], env);
  // a Slurm array --array=4-5 (ids 4 and 5, so MIN 4) of 2 tasks
  for (const id of ["4", "5"]) {
    const { code, text } = await study({
      SLURM_ARRAY_TASK_ID: id,
      SLURM_ARRAY_TASK_MIN: "4",
      SLURM_ARRAY_TASK_COUNT: "2",
    });
    assert.equal(code, 0, text);
    assert.match(text, new RegExp(`shard ${Number(id) - 4}/2: \\d+ rows`));
  }
  const merged = await run([
    "bash",
    "-c",
    `"${Deno.execPath()}" run ${
      PERMISSIONS.join(" ")
    } src/cli/main.ts merge ${out}/shard-*-of-2.jsonl -o ${out}/all.jsonl`,
  ]);
  assert.equal(merged.code, 0, merged.text);
  assert.match(merged.text, /merged 2 shard\(s\) of localization .*\ncomplete/);
  // a Kubernetes Indexed Job of 3 pods where one has not run yet: the merge says which
  for (const index of ["0", "2"]) {
    const { code, text } = await study({ JOB_COMPLETION_INDEX: index, INFODIFF_SHARD_COUNT: "3" });
    assert.equal(code, 0, text);
  }
  const partial = await run([
    "bash",
    "-c",
    `"${Deno.execPath()}" run ${
      PERMISSIONS.join(" ")
    } src/cli/main.ts merge ${out}/shard-*-of-3.jsonl -o ${out}/k8s.jsonl`,
  ]);
  assert.equal(partial.code, 1, partial.text);
  assert.match(partial.text, /missing shards: 1\nincomplete/);
});
