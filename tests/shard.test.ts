// Shard selection from the command line and from schedulers' environments, exhaustively.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/errors.ts";
import { parseShard, shardFromEnvironment } from "../src/studies/shard.ts";

Deno.test("shard i/n: every valid pair, and malformed ones refused", () => {
  for (let count = 1; count <= 5; count++) {
    for (let index = 0; index < count; index++) {
      assert.deepEqual(parseShard(`${index}/${count}`), { index, count });
      assert.deepEqual(shardFromEnvironment(` ${index}/${count} `, {}), { index, count });
    }
  }
  for (const bad of ["3/3", "-1/3", "1/0", "1.5/3", "a/b", "1", "1/2/3", "", "auto/2"]) {
    assert.throws(() => shardFromEnvironment(bad, {}), InvalidArgumentError, bad);
  }
});

Deno.test("shard auto: Slurm job arrays, with offsets and steps", () => {
  // sbatch --array=0-7: ids 0…7
  for (let id = 0; id < 8; id++) {
    const env = {
      SLURM_ARRAY_TASK_ID: `${id}`,
      SLURM_ARRAY_TASK_MIN: "0",
      SLURM_ARRAY_TASK_COUNT: "8",
    };
    assert.deepEqual(shardFromEnvironment("auto", env), { index: id, count: 8 });
  }
  // --array=10-13 and --array=1-9:4 (ids 1, 5, 9)
  const offset = { SLURM_ARRAY_TASK_MIN: "10", SLURM_ARRAY_TASK_COUNT: "4" };
  assert.deepEqual(
    [10, 11, 12, 13].map((id) =>
      shardFromEnvironment("auto", { ...offset, SLURM_ARRAY_TASK_ID: `${id}` }).index
    ),
    [0, 1, 2, 3],
  );
  const stepped = {
    SLURM_ARRAY_TASK_MIN: "1",
    SLURM_ARRAY_TASK_STEP: "4",
    SLURM_ARRAY_TASK_COUNT: "3",
  };
  assert.deepEqual(
    [1, 5, 9].map((id) =>
      shardFromEnvironment("auto", { ...stepped, SLURM_ARRAY_TASK_ID: `${id}` })
    ),
    [0, 1, 2].map((index) => ({ index, count: 3 })),
  );
  const refused: Record<string, string | undefined>[] = [
    { SLURM_ARRAY_TASK_ID: "3" }, // no count
    { SLURM_ARRAY_TASK_ID: "x", SLURM_ARRAY_TASK_COUNT: "4" },
    {
      SLURM_ARRAY_TASK_ID: "2",
      SLURM_ARRAY_TASK_MIN: "1",
      SLURM_ARRAY_TASK_STEP: "4",
      SLURM_ARRAY_TASK_COUNT: "3",
    },
    { SLURM_ARRAY_TASK_ID: "14", SLURM_ARRAY_TASK_MIN: "10", SLURM_ARRAY_TASK_COUNT: "4" }, // index 4 of 4
    { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "4", JOB_COMPLETION_INDEX: "1" }, // two schedulers
  ];
  for (const env of refused) {
    assert.throws(
      () => shardFromEnvironment("auto", env),
      InvalidArgumentError,
      JSON.stringify(env),
    );
  }
});

Deno.test("shard auto: Kubernetes Indexed Jobs take the count from the option or INFODIFF_SHARD_COUNT", () => {
  assert.deepEqual(shardFromEnvironment("auto", { JOB_COMPLETION_INDEX: "2" }, 5), {
    index: 2,
    count: 5,
  });
  assert.deepEqual(
    shardFromEnvironment("auto", { JOB_COMPLETION_INDEX: "0", INFODIFF_SHARD_COUNT: "3" }),
    { index: 0, count: 3 },
  );
  // the option wins over the variable
  assert.deepEqual(
    shardFromEnvironment("auto", { JOB_COMPLETION_INDEX: "1", INFODIFF_SHARD_COUNT: "3" }, 2),
    { index: 1, count: 2 },
  );
  assert.throws(() => shardFromEnvironment("auto", { JOB_COMPLETION_INDEX: "1" }), /--shard-count/);
  assert.throws(
    () => shardFromEnvironment("auto", { JOB_COMPLETION_INDEX: "3", INFODIFF_SHARD_COUNT: "3" }),
    /0 ≤ index < count/,
  );
});

Deno.test("shard auto outside a scheduler is the one shard, unless a count says otherwise", () => {
  assert.deepEqual(shardFromEnvironment("auto", {}), { index: 0, count: 1 });
  assert.deepEqual(shardFromEnvironment("auto", {}, 1), { index: 0, count: 1 });
  assert.throws(() => shardFromEnvironment("auto", {}, 4), /neither a Slurm job array/);
});
