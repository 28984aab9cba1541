// Preloaded by `deno task test`: console.assert only logs, so a doc example whose claim is false
// would pass silently; here a false assertion throws and fails its test.
console.assert = (condition?: boolean, ...data: unknown[]): void => {
  if (!condition) throw new Error(`Assertion failed${data.length ? ": " + data.join(" ") : ""}`);
};
