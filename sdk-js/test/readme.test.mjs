// The README's TypeScript as written: every ```ts block of README.md is
// compiled as a module of its own under `tsc --strict`, with "comms-sdk"
// resolving to this package (built) and "ws" to its dev dependency, as in
// an app that installed both. The walkthrough (the block whose first line
// names `chat.ts`) then runs against a real server that is restarted while
// it sends, and must exit 0 with each of its messages published once.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { CommsClient } from "../dist/index.js";
import { CommsServer } from "./support.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(join(tmpdir(), "comms-sdk-readme-"));
const server = new CommsServer();

before(() => server.start());
after(async () => {
  await server.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** The ```ts blocks of the README, in order. */
function snippets() {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
}

test("the README's TypeScript compiles under tsc --strict and its walkthrough runs", { timeout: 90_000 }, async () => {
  const blocks = snippets();
  assert.ok(blocks.length >= 5, `only ${blocks.length} ts blocks`);
  // An app's node_modules: this package under its name, and what the README installs beside it.
  const modules = join(work, "node_modules");
  mkdirSync(modules);
  symlinkSync(root, join(modules, "comms-sdk"), "dir");
  symlinkSync(join(root, "node_modules", "ws"), join(modules, "ws"), "dir");
  symlinkSync(join(root, "node_modules", "@types"), join(modules, "@types"), "dir");
  writeFileSync(join(work, "package.json"), JSON.stringify({ type: "module" }));
  const names = blocks.map((block, i) => /^\/\/ (\w+)\.ts\b/.exec(block)?.[1] ?? `snippet-${i + 1}`);
  blocks.forEach((block, i) => writeFileSync(join(work, `${names[i]}.ts`), block));
  const tsconfig = JSON.parse(readFileSync(join(root, "tsconfig.json"), "utf8")).compilerOptions;
  writeFileSync(
    join(work, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: tsconfig.target,
        module: tsconfig.module,
        moduleResolution: tsconfig.moduleResolution,
        lib: tsconfig.lib,
        types: ["node"],
        strict: true,
        skipLibCheck: true,
        outDir: "out",
      },
      include: ["*.ts"],
    }),
  );
  try {
    execFileSync(join(root, "node_modules", ".bin", "tsc"), ["-p", work], { cwd: work, stdio: "pipe" });
  } catch (err) {
    assert.fail(`the README's snippets do not compile:\n${err.stdout}${err.stderr}`);
  }

  assert.ok(names.includes("chat"), "a walkthrough named chat.ts");
  const apiKey = server.createApp("readme");
  const child = spawn(process.execPath, [join(work, "out", "chat.js")], {
    cwd: work,
    env: { ...process.env, COMMS_URL: server.url, COMMS_KEY: apiKey },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stderr.on("data", (data) => (output += data));
  const exited = new Promise((done) => child.once("exit", done));
  // Restarted after its second message was stored: the rest waits, and is published once.
  await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`the walkthrough said:\n${output}`)), 20_000);
    child.stdout.on("data", (data) => {
      output += data;
      if (output.includes("sent message 2 as")) {
        clearTimeout(timer);
        done();
      }
    });
  });
  await server.stop();
  await server.start();
  const code = await exited;
  assert.equal(code, 0, `the walkthrough exited with ${code}:\n${output}`);
  assert.match(output, /sent message 5 as #\d+/);
  const history = (await new CommsClient(server.url, apiKey).listMessages("lobby")).messages;
  assert.deepEqual(
    history.map((message) => message.message.text),
    [1, 2, 3, 4, 5].map((n) => `message ${n}`),
  );
});
