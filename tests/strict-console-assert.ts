// Preloaded by `deno task test`: console.assert only logs, so a doc example whose claim is false
// would pass silently; here a false assertion throws and fails its test.
console.assert = (condition?: boolean, ...data: unknown[]): void => {
  if (!condition) throw new Error(`Assertion failed${data.length ? ": " + data.join(" ") : ""}`);
};

// A fresh infodiff cache per test process: a study that calibrates itself stores its profile
// there, and a profile left by an earlier run must not change this run's numbers.
try {
  if (!Deno.env.get("INFODIFF_CACHE")) {
    Deno.env.set("INFODIFF_CACHE", Deno.makeTempDirSync({ prefix: "infodiff-test-cache-" }));
  }
} catch {
  // without --allow-env or --allow-write nothing can calibrate into the cache either
}
