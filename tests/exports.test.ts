// mod.ts is the one import a notebook needs: it must carry every runtime export of the studies,
// plots and datasets entry points (the lists are explicit, so this keeps them from drifting).
import assert from "node:assert/strict";

Deno.test("mod.ts re-exports every value of ./studies, ./plots and ./datasets", async () => {
  const main = await import("../mod.ts");
  for (const entry of ["../src/studies/mod.ts", "../src/plots/mod.ts", "../src/datasets/mod.ts"]) {
    const sub = await import(entry);
    const missing = Object.keys(sub).filter((name) => !(name in main));
    assert.deepEqual(missing, [], `${entry} exports that mod.ts lacks`);
    for (const name of Object.keys(sub)) {
      assert.equal(main[name as keyof typeof main], sub[name], name);
    }
  }
});
