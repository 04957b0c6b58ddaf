/**
 * The K3s manifests of examples/k3s, checked offline: strict validation against the official
 * Kubernetes schemas (PyPI `kubernetes-validate --strict -k 1.32.0`, which bundles them), broken
 * manifests the check must reject, the kustomization's lists, the 75% rule on each node's limits,
 * endpoints from the ConfigMap only, and the hooks and secret files the kustomization generates from.
 *
 * k3s itself is not run (not installable here): this is validation only (docs/deploy.md).
 * A missing `kubernetes-validate` fails the file with the install command: it never skips.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "@nxs-sync/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";

const K8S_VERSION = "1.32.0";
const PINNED = "1.37.0"; // scripts/ensure-kubernetes-validate.sh
const INSTALL = "bash scripts/ensure-kubernetes-validate.sh";
const dir = fileURLToPath(new URL("..", import.meta.url));
const fixtures = join(dir, "test", "fixtures");

/** The first `kubernetes-validate` that answers, where the install script puts it. */
function findValidator(): { bin: string; version: string } | { error: string } {
  const candidates = [
    process.env.NXS_KUBERNETES_VALIDATE,
    "kubernetes-validate",
    process.env.NXS_KV_VENV && join(process.env.NXS_KV_VENV, "bin", "kubernetes-validate"),
    join(homedir(), ".cache", "nxs-sync", `kubernetes-validate-${PINNED}`, "bin", "kubernetes-validate"),
  ].filter((c): c is string => typeof c === "string" && c !== "");
  const seen: string[] = [];
  for (const bin of candidates) {
    const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
    if (r.status !== 0) continue;
    const version = r.stdout.trim();
    if (version === PINNED) return { bin, version };
    seen.push(`${bin} is ${version}`);
  }
  return {
    error:
      `kubernetes-validate ${PINNED} is not installed (${seen.length ? seen.join("; ") : "none found on PATH or in ~/.cache/nxs-sync"}): ` +
      `run \`${INSTALL}\` (pip install kubernetes-validate==${PINNED} into a venv)`,
  };
}

let validator: { bin: string; version: string } | { error: string };

/** Runs the check the docs give: `kubernetes-validate --strict -k 1.32.0 FILE…`. */
function validate(files: readonly string[], strict = true): { status: number | null; output: string } {
  if ("error" in validator) throw new Error(validator.error);
  const args = [...(strict ? ["--strict"] : []), "-k", K8S_VERSION, "--no-warn", ...files];
  const r = spawnSync(validator.bin, args, { encoding: "utf8", cwd: dir });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

interface K8sDoc {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

const kustomization = parseYaml(await readFile(join(dir, "kustomization.yaml"), "utf8")) as {
  resources: string[];
  configMapGenerator: { name: string; files: string[] }[];
  secretGenerator: { name: string; envs?: string[]; files?: string[] }[];
  images: { name: string; newName: string; newTag: string }[];
};
const manifestFiles = (await readdir(dir)).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
const docs: { file: string; doc: K8sDoc }[] = [];
for (const file of manifestFiles) {
  for (const d of parseAllDocuments(await readFile(join(dir, file), "utf8"))) {
    docs.push({ file, doc: d.toJS() as K8sDoc });
  }
}

type Container = {
  name: string;
  image?: string;
  imagePullPolicy?: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { configMapKeyRef?: { name: string; key: string } } }[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
  resources?: { limits?: { cpu?: string; memory?: string }; requests?: { cpu?: string; memory?: string } };
};
type PodSpec = {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { configMap?: { name: string }; secret?: { secretName: string } }[];
  affinity?: {
    nodeAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: {
        nodeSelectorTerms: { matchExpressions: { key: string; values: string[] }[] }[];
      };
    };
  };
};

/** Every workload's pod spec with the node it is pinned to (`nxs-sync/node`). */
const pods = docs
  .filter(({ doc }) => ["StatefulSet", "Deployment", "Job"].includes(doc.kind))
  .map(({ file, doc }) => {
    const spec = (doc.spec as { template: { spec: PodSpec } }).template.spec;
    const terms =
      spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    const node = terms?.[0]?.matchExpressions.find((e) => e.key === "nxs-sync/node")?.values;
    return { file, name: `${doc.kind}/${doc.metadata.name}`, spec, node };
  });

const milliCpu = (q: string): number => (q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000);
const mebibytes = (q: string): number => {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`memory quantity ${q}: write it in Mi or Gi`);
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
};

beforeAll(() => {
  validator = findValidator();
});

describe("examples/k3s: strict offline validation (kubernetes-validate --strict -k 1.32.0)", () => {
  it(`kubernetes-validate ${PINNED} is installed (else: ${INSTALL})`, () => {
    if ("error" in validator) throw new Error(validator.error);
    expect(validator.version).toBe(PINNED);
  });

  it("every manifest passes, each resource named in the output", () => {
    const r = validate(manifestFiles);
    expect(r.output).not.toMatch(/ERROR/);
    expect(r.status, r.output).toBe(0);
    for (const { file, doc } of docs) {
      expect(r.output).toContain(
        `${file} passed for resource ${doc.kind.toLowerCase()}/${doc.metadata.name} against version 1.32`,
      );
    }
  });

  const broken: [file: string, message: RegExp, passesWithoutStrict: boolean][] = [
    ["typo-replica.yaml", /spec: Additional properties are not allowed \('replica' was unexpected\)/, true],
    [
      "typo-probe.yaml",
      /readinessProbe\.httpGet: Additional properties are not allowed \('paht' was unexpected\)/,
      true,
    ],
    ["wrong-type.yaml", /spec\.replicas: 'one' is not of type 'integer'/, false],
    ["missing-required.yaml", /containers\.0: 'name' is a required property/, false],
  ];
  it.each(broken)("rejects the broken manifest %s with its reason", (file, message, passesWithoutStrict) => {
    const r = validate([join(fixtures, file)]);
    expect(r.status, r.output).toBe(1);
    expect(r.output).toMatch(/ERROR .* did not validate for resource/);
    expect(r.output).toMatch(message);
    // Why --strict: without it an unknown field passes (../shared/DEPLOY.md §5).
    expect(validate([join(fixtures, file)], false).status).toBe(passesWithoutStrict ? 0 : 1);
  });

  it("one broken manifest among good ones fails the whole run", () => {
    const r = validate([...manifestFiles, join(fixtures, "typo-replica.yaml")]);
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/pocketbase-typo .*'replica' was unexpected/);
  });

  it("every broken fixture is covered above", async () => {
    const files = (await readdir(fixtures)).filter((f) => f.endsWith(".yaml")).sort();
    expect(files).toEqual(broken.map(([f]) => f).sort());
  });
});

describe("examples/k3s: the kustomization and the fleet's shape", () => {
  it("lists every manifest as a resource, and only those", () => {
    expect([...kustomization.resources].sort()).toEqual([...manifestFiles].sort());
  });

  it("each node runs one PocketBase and one gateway, pinned to it, with a volume claim on it", () => {
    for (const node of ["primary", "secondary"]) {
      for (const app of ["pocketbase", "gateway"]) {
        const set = docs.find(
          ({ doc }) => doc.kind === "StatefulSet" && doc.metadata.name === `${app}-${node}`,
        );
        expect(set, `${app}-${node}`).toBeDefined();
        const spec = set!.doc.spec as { replicas: number; volumeClaimTemplates: unknown[] };
        expect(spec.replicas).toBe(1);
        expect(spec.volumeClaimTemplates).toHaveLength(1);
        expect(pods.find((p) => p.name === `StatefulSet/${app}-${node}`)?.node).toEqual([node]);
      }
    }
    for (const p of pods) expect(p.node, `${p.name} is pinned to a node`).toHaveLength(1);
  });

  it("probes every PocketBase on /api/health", () => {
    for (const p of pods.filter((x) => x.name.startsWith("StatefulSet/pocketbase-"))) {
      const c = p.spec.containers[0] as Container & Record<string, { httpGet?: { path: string } }>;
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        expect(c[probe]?.httpGet?.path, `${p.name} ${probe}`).toBe("/api/health");
      }
    }
  });

  it("takes every URL from the nxs-endpoints ConfigMap, none is written in a workload", () => {
    const endpoints = docs.find(
      ({ doc }) => doc.kind === "ConfigMap" && doc.metadata.name === "nxs-endpoints",
    );
    const keys = Object.keys(endpoints?.doc.data ?? {});
    for (const p of pods) {
      expect(JSON.stringify(p.spec), p.name).not.toMatch(/https?:\/\//);
      for (const c of [...p.spec.containers, ...(p.spec.initContainers ?? [])]) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (ref) expect(keys, `${p.name} ${e.name}`).toContain(ref.key);
        }
      }
    }
    expect(Object.values(endpoints?.doc.data ?? {}).join(",")).toMatch(/\.ts\.net:8090/);
  });

  it("references only generated Secrets and ConfigMaps, and images by their placeholder names", () => {
    const secrets = new Set(kustomization.secretGenerator.map((s) => s.name));
    const configMaps = new Set([
      ...kustomization.configMapGenerator.map((c) => c.name),
      ...docs.filter(({ doc }) => doc.kind === "ConfigMap").map(({ doc }) => doc.metadata.name),
    ]);
    const images = new Set(kustomization.images.map((i) => i.name));
    for (const p of pods) {
      for (const c of [...p.spec.containers, ...(p.spec.initContainers ?? [])]) {
        expect(images, `${p.name} ${c.name} image`).toContain(c.image);
        expect(c.imagePullPolicy, `${p.name} ${c.name}: no registry`).toBe("Never");
        for (const f of c.envFrom ?? []) if (f.secretRef) expect(secrets).toContain(f.secretRef.name);
      }
      for (const v of p.spec.volumes ?? []) {
        if (v.configMap) expect(configMaps).toContain(v.configMap.name);
        if (v.secret) expect(secrets).toContain(v.secret.secretName);
      }
    }
    for (const i of kustomization.images) expect(i.newTag).toBe("not-built-yet");
  });

  // The 75% rule: on each node, the sum of the pods' limits stays within 75% of the machine.
  // A pod counts max(its largest init container, the sum of its containers), as the scheduler does.
  const budgets = {
    primary: { cpuMilli: 0.75 * 4000, memMi: 0.75 * 24 * 1024 }, // Oracle ARM VM: 4 cores, 24 GB
    secondary: { cpuMilli: 0.75 * 1000, memMi: 0.75 * 256 }, // Fly.io: 1 shared vCPU, 256 MB
  } as const;
  const expected = {
    primary: { cpuMilli: 2500, memMi: 9984 },
    secondary: { cpuMilli: 750, memMi: 176 },
  };
  it.each(Object.keys(budgets) as (keyof typeof budgets)[])(
    "limits on the %s sum to the figures of docs/deploy.md, within 75% of the node",
    (node) => {
      let cpuMilli = 0;
      let memMi = 0;
      for (const p of pods.filter((x) => x.node?.[0] === node)) {
        const sum = (cs: Container[], f: (c: Container) => number) => cs.reduce((n, c) => n + f(c), 0);
        const max = (cs: Container[], f: (c: Container) => number) => Math.max(0, ...cs.map(f));
        const cpu = (c: Container) => milliCpu(c.resources?.limits?.cpu ?? "");
        const mem = (c: Container) => mebibytes(c.resources?.limits?.memory ?? "");
        for (const c of [...p.spec.containers, ...(p.spec.initContainers ?? [])]) {
          expect(c.resources?.limits?.cpu, `${p.name} ${c.name} cpu limit`).toBeDefined();
          expect(c.resources?.limits?.memory, `${p.name} ${c.name} memory limit`).toBeDefined();
        }
        cpuMilli += Math.max(sum(p.spec.containers, cpu), max(p.spec.initContainers ?? [], cpu));
        memMi += Math.max(sum(p.spec.containers, mem), max(p.spec.initContainers ?? [], mem));
      }
      expect({ cpuMilli, memMi }).toEqual(expected[node]);
      expect(cpuMilli).toBeLessThanOrEqual(budgets[node].cpuMilli);
      expect(memMi).toBeLessThanOrEqual(budgets[node].memMi);
    },
  );
});

describe("examples/k3s: the files the kustomization generates from", () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "nxs-k3s-"));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("the hooks ConfigMap lists exactly the files `nxs-sync hooks write` produces", async () => {
    const out = join(scratch, "hooks");
    const quiet = { write: () => {} };
    const code = await runCli(["hooks", "write", out], {
      env: {},
      stdout: quiet,
      stderr: quiet,
      signal: new AbortController().signal,
    });
    expect(code).toBe(0);
    const written = (await readdir(out)).filter((f) => f.endsWith(".pb.js")).sort();
    const listed = kustomization.configMapGenerator.find((c) => c.name === "nxs-hooks")?.files ?? [];
    expect(listed.map((f) => f.replace(/^hooks\//, "")).sort()).toEqual(written);
    // A ConfigMap holds at most 1 MiB.
    let bytes = 0;
    for (const f of written) bytes += (await stat(join(out, f))).size;
    expect(bytes).toBeLessThan(1024 * 1024);
  });

  it("make-secrets.mjs writes every secret file but superuser.env (0600), an identities file setup reads, and keeps existing ones", async () => {
    const out = join(scratch, "secrets");
    await mkdir(out);
    const run = () =>
      spawnSync(process.execPath, [join(dir, "make-secrets.mjs"), out], { encoding: "utf8", cwd: dir });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    const wanted = kustomization.secretGenerator
      .flatMap((s) => [...(s.envs ?? []), ...(s.files ?? [])])
      .map((f) => f.replace(/^secrets\//, ""))
      .filter((f) => f !== "superuser.env")
      .sort();
    expect((await readdir(out)).sort()).toEqual(wanted);
    for (const f of wanted) expect(((await stat(join(out, f))).mode & 0o777).toString(8)).toBe("600");
    const ids = JSON.parse(await readFile(join(out, "fleet-ids.json"), "utf8"));
    const before = await readFile(join(out, "gateway-primary.env"), "utf8");
    expect(before).toContain(`NXS_NODE_ID=${ids.nodes[0].id}`);
    // Nothing a password could be confused with is printed.
    expect(first.stdout + first.stderr).not.toContain(ids.replicator.password);
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stderr).toMatch(/kept .*fleet-ids\.json \(exists\)/);
    expect(await readFile(join(out, "gateway-primary.env"), "utf8")).toBe(before);
    // `nxs-sync setup` reads it (a dry run against no server still parses --identities first).
    const setup = await runCli(
      ["setup", "--server", "http://127.0.0.1:9", "--identities", join(out, "fleet-ids.json"), "--dry-run"],
      {
        env: { NXS_SUPERUSER_EMAIL: "ops@example.com", NXS_SUPERUSER_PASSWORD: "x".repeat(12) },
        stdout: { write: () => {} },
        stderr: { write: () => {} },
        signal: new AbortController().signal,
      },
    );
    expect(setup, "setup read the file and then found no server (exit 4), not a bad file (exit 2)").toBe(4);
  });
});
