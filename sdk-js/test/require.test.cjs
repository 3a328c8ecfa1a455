// The package from CommonJS: `require("comms-sdk")` (the package's own name,
// through its `exports`) loads the ES module on Node >= 20.19.
const { test } = require("node:test");
const assert = require("node:assert/strict");

test("require() loads the package by its name", () => {
  const sdk = require("comms-sdk");
  assert.equal(typeof sdk.CommsClient, "function");
  assert.equal(typeof sdk.connectEndpoint, "function");
  assert.equal(new sdk.CommsError(404, "not_found", "gone").code, "not_found");
  assert.equal(sdk.segment, undefined, "nothing internal");
});
