#!/usr/bin/env node
// Checks what every publishable package would publish. Run after `npm run build`.
// - publint (package.json vs files) and @arethetypeswrong/cli (types resolve for ESM and CJS
//   consumers under node16 and bundler resolution);
// - the tarball itself (`npm pack`, unpacked into a temp dir): it holds LICENSE, the same text as
//   the repository's, and every relative link of every Markdown file in it (README.md…) resolves to
//   a file inside the unpacked package, with the #anchor a heading of that file; https links are
//   not fetched;
// - every package.json of the repository (root, packages/*, examples/*) names the root's license.
// `--release` (scripts/release.sh, before publishing) also refuses version 0.0.0 and a dependency
// on a sibling package at another version than the sibling's.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const release = process.argv.includes("--release");
const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const workspaceDirs = (parent) =>
  readdirSync(join(root, parent))
    .map((d) => join(root, parent, d))
    .filter((d) => existsSync(join(d, "package.json")));
const dirs = workspaceDirs("packages").filter((d) => !readJson(join(d, "package.json")).private);

let failed = 0;
const fail = (what, detail) => {
  failed++;
  console.log(`FAIL ${what}${detail ? `\n${detail}` : ""}`);
};

// ── license fields ─────────────────────────────────────────────────────────────────────────────
const rootLicense = readJson(join(root, "package.json")).license;
const licenseText = readFileSync(join(root, "LICENSE"), "utf8");
for (const dir of [root, ...workspaceDirs("packages"), ...workspaceDirs("examples")]) {
  const pkg = readJson(join(dir, "package.json"));
  if (pkg.license !== rootLicense)
    fail(
      `license ${pkg.name}`,
      `  ${relative(root, join(dir, "package.json")) || "package.json"}: license is ${JSON.stringify(pkg.license)}, not "${rootLicense}"`,
    );
}
if (!failed) console.log(`ok   license "${rootLicense}" in every package.json`);

// ── Markdown links ─────────────────────────────────────────────────────────────────────────────
/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");

function anchorsOf(file) {
  const seen = new Map();
  const anchors = new Set();
  let fenced = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const h = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = slug(h[1].replace(/\[([^\]]*)\]\([^)]*\)/g, "$1"));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Every link target of a Markdown file (inline `[x](target)` and reference `[x]: target`), outside code. */
function linksOf(file) {
  const out = [];
  let fenced = false;
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (/^\s*```/.test(line)) fenced = !fenced;
      if (fenced) return;
      const text = line.replace(/`[^`]*`/g, "");
      for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
        out.push({ line: i + 1, target: m[1] });
      const ref = /^\s*\[[^\]]+\]:\s*(\S+)/.exec(text);
      if (ref) out.push({ line: i + 1, target: ref[1] });
    });
  return out;
}

/** The broken links of every Markdown file under `top` (links must stay inside `top`). */
function brokenLinks(top) {
  const broken = [];
  const walk = (dir) =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : n.toLowerCase().endsWith(".md") ? [p] : [];
    });
  for (const file of walk(top)) {
    for (const { line, target } of linksOf(file)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:…: not fetched
      const [path, anchor] = target.split("#", 2);
      const to = path ? resolve(dirname(file), decodeURIComponent(path)) : file;
      const where = `${relative(top, file)}:${line}: ${target}`;
      if (relative(top, to).startsWith("..")) broken.push(`${where} (outside the package)`);
      else if (!existsSync(to)) broken.push(`${where} (no such file in the package)`);
      else if (anchor && to.endsWith(".md") && !anchorsOf(to).has(anchor))
        broken.push(`${where} (no such heading)`);
    }
  }
  return broken;
}

// ── per package ────────────────────────────────────────────────────────────────────────────────
const versions = new Map(
  dirs.map((d) => [readJson(join(d, "package.json")).name, readJson(join(d, "package.json")).version]),
);
const scratch = mkdtempSync(join(tmpdir(), "nxs-pack-check-"));
try {
  for (const dir of dirs) {
    const pkg = readJson(join(dir, "package.json"));
    const name = pkg.name;
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
        fail(`${tool} ${name}`, `${e.stdout ?? ""}${e.stderr ?? ""}`);
      }
    }

    const into = join(scratch, name.replace(/[@/]/g, "_"));
    const packed = JSON.parse(
      execFileSync("npm", ["pack", "--json", "--pack-destination", scratch], {
        cwd: dir,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }),
    )[0];
    execFileSync("mkdir", ["-p", into]);
    execFileSync("tar", ["xzf", join(scratch, packed.filename), "-C", into]);
    const unpacked = join(into, "package");
    const problems = [];
    if (!existsSync(join(unpacked, "LICENSE"))) problems.push("  no LICENSE in the tarball");
    else if (readFileSync(join(unpacked, "LICENSE"), "utf8") !== licenseText)
      problems.push("  LICENSE differs from the repository's LICENSE (copy it again)");
    if (!existsSync(join(unpacked, "README.md"))) problems.push("  no README.md in the tarball");
    problems.push(...brokenLinks(unpacked).map((b) => `  broken link ${b}`));
    if (problems.length) fail(`tarball ${name}`, problems.join("\n"));
    else
      console.log(
        `ok   tarball ${name} (${packed.entryCount} files, LICENSE, README links resolve inside it)`,
      );

    if (release) {
      const wrong = [];
      if (pkg.version === "0.0.0") wrong.push("  version 0.0.0: run `npm run version-packages` first");
      for (const [dep, spec] of Object.entries({ ...pkg.dependencies, ...pkg.peerDependencies })) {
        if (versions.has(dep) && spec !== versions.get(dep))
          wrong.push(`  depends on ${dep}@${spec}, but ${dep} is at ${versions.get(dep)}`);
      }
      if (wrong.length) fail(`release ${name}`, wrong.join("\n"));
      else console.log(`ok   release ${name}@${pkg.version}`);
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (failed) {
  console.error(`${failed} package check(s) failed`);
  process.exit(1);
}
