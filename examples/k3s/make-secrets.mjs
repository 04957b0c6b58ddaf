#!/usr/bin/env node
// Writes the secret files of kustomization.yaml into DIR (default: secrets/ beside this file), each
// mode 0600, and never overwrites one that exists:
//   fleet-ids.json         the identities file of `nxs-sync setup` (the format of
//                          packages/cli/src/identities.ts: a random 15-char id, an email and a
//                          password per account), for the replicator and the two gateways;
//   replicator.env, gateway-primary.env, gateway-secondary.env   the same accounts as variables;
//   config-keys.env        a new config keyring (NXS_CONFIG_KEYS, one 32-byte key);
//   nats.env               with --nats only: the NATS account of examples/compose/compose.nats.yml
//                          (NXS_NATS_USER, NXS_NATS_PASSWORD), read by the NATS servers and the gateways.
// superuser.env is yours to write (copy superuser.env.example). Prints no secret.
// Usage: node examples/k3s/make-secrets.mjs [DIR] [--nats]
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const withNats = args.includes("--nats");
const dir = args.find((a) => !a.startsWith("--")) ?? join(dirname(fileURLToPath(import.meta.url)), "secrets");
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const newId = () => [...randomBytes(15)].map((b) => ALPHABET[b % ALPHABET.length]).join("");
const identity = (name, domain) => {
  const id = newId();
  return {
    id,
    name,
    email: `${name}-${id}@${domain}.nxs-sync.local`,
    password: randomBytes(24).toString("base64url"),
  };
};
const write = (file, text) => {
  const path = join(dir, file);
  if (existsSync(path)) {
    console.error(`kept ${path} (exists)`);
    return;
  }
  writeFileSync(path, text, { mode: 0o600, flag: "wx" });
  console.error(`wrote ${path}`);
};

const idsPath = join(dir, "fleet-ids.json");
const ids = existsSync(idsPath)
  ? JSON.parse(readFileSync(idsPath, "utf8"))
  : {
      version: 1,
      replicator: identity("replicator", "replicators"),
      nodes: [identity("gateway-primary", "nodes"), identity("gateway-secondary", "nodes")],
    };
write("fleet-ids.json", `${JSON.stringify(ids, null, 2)}\n`);
const r = ids.replicator;
write("replicator.env", `NXS_REPLICATOR_EMAIL=${r.email}\nNXS_REPLICATOR_PASSWORD=${r.password}\n`);
for (const name of ["gateway-primary", "gateway-secondary"]) {
  const n = ids.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`${idsPath} has no node named ${name}`);
  write(`${name}.env`, `NXS_NODE_ID=${n.id}\nNXS_NODE_EMAIL=${n.email}\nNXS_NODE_PASSWORD=${n.password}\n`);
}
write(
  "config-keys.env",
  `NXS_CONFIG_KEYS=k1:${randomBytes(32).toString("base64")}\nNXS_CONFIG_ACTIVE_KEY=k1\n`,
);
if (withNats)
  write(
    "nats.env",
    `NXS_NATS_USER=nxs-gateways\nNXS_NATS_PASSWORD=${randomBytes(24).toString("base64url")}\n`,
  );
