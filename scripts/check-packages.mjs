#!/usr/bin/env node
// Checks the packed output of every publishable package: publint (package.json vs files) and
// @arethetypeswrong/cli (types resolve for ESM and CJS consumers under node16 and bundler
// resolution). Run after `npm run build`.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const dirs = readdirSync(join(root, "packages"))
  .map((d) => join(root, "packages", d))
  .filter((d) => !JSON.parse(readFileSync(join(d, "package.json"), "utf8")).private);

let failed = 0;
for (const dir of dirs) {
  const name = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name;
  for (const [tool, args] of [
    ["publint", ["publint", "--strict", dir]],
    ["attw", ["attw", "--pack", dir, "--profile", "node16", "--format", "table-flipped"]],
  ]) {
    try {
      const out = execFileSync("npx", ["--no-install", ...args], {
        cwd: root,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      console.log(`ok   ${tool} ${name}`);
      if (process.env.VERBOSE) console.log(out);
    } catch (e) {
      failed++;
      console.log(`FAIL ${tool} ${name}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    }
  }
}
if (failed) {
  console.error(`${failed} package check(s) failed`);
  process.exit(1);
}
