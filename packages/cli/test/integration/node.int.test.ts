import { readFile } from "node:fs/promises";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import PocketBase from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";
import { CliExitCode } from "../../src/index.js";
import type { FleetStatus } from "../../src/status.js";
import { cli, leaksPassword, serverArgs, startSetUpFleet, writeChanges } from "./fleet.js";

const servers = usePocketBaseServers();

interface File {
  nodes: { id: string; name: string; email: string; password: string; disabled?: boolean }[];
}
const readFile_ = async (p: string) => JSON.parse(await readFile(p, "utf8")) as File;

/** A node's session on a server: its token after a password login. */
async function login(url: string, email: string, password: string): Promise<string> {
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  await pb.collection("nxs_nodes").authWithPassword(email, password);
  return pb.authStore.token;
}

/** Whether a token is still accepted (an auth-refresh with it). */
async function accepted(url: string, token: string): Promise<boolean> {
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  pb.authStore.save(token, null);
  try {
    await pb.collection("nxs_nodes").authRefresh();
    return true;
  } catch (e) {
    if ((e as { status?: number }).status === 401 || (e as { status?: number }).status === 403) return false;
    throw e;
  }
}

describe("nxs-sync node", () => {
  let a: ProcessPocketBase;
  let b: ProcessPocketBase;
  let ids: string;
  beforeAll(async () => {
    ({ a, b, ids } = await startSetUpFleet(servers, "node"));
  });

  it("adds a gateway with the same id on both servers, idempotently", async () => {
    const first = await cli(["node", "add", "gw-2", ...serverArgs([a, b]), "--identities", ids, "--json"]);
    expect(first.code, first.stderr).toBe(CliExitCode.Ok);
    expect(first.json()).toMatchObject({ changed: true });
    const gw = (await readFile_(ids)).nodes.find((n) => n.name === "gw-2")!;
    for (const s of [a, b])
      expect((await s.client().collection("nxs_nodes").getOne(gw.id)).email).toBe(gw.email);
    // status shows the new member on both servers.
    const status = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    expect(status.members.find((m) => m.id === gw.id)).toMatchObject({
      name: "gw-2",
      role: "gateway",
      on: [a.url, b.url],
    });
    expect(status.converged).toBe(true);
    const again = await cli(["node", "add", "gw-2", ...serverArgs([a, b]), "--identities", ids, "--json"]);
    expect(again.json()).toMatchObject({ changed: false, node: { id: gw.id } });
    expect((await readFile_(ids)).nodes.filter((n) => n.name === "gw-2")).toHaveLength(1);
    expect(leaksPassword(again)).toBe(false);
  });

  it("adds a read-only operator with --role operator on both servers; setup keeps it; a bad role is a usage error", async () => {
    const run = await cli([
      "node",
      "add",
      "ops-1",
      "--role",
      "operator",
      ...serverArgs([a, b]),
      "--identities",
      ids,
    ]);
    expect(run.code, run.stderr).toBe(CliExitCode.Ok);
    expect(run.stdout).toMatch(
      /operator ops-1: id [a-z0-9]{15}, email ops-1-[a-z0-9]{15}@operators\.nxs-sync\.local/,
    );
    expect(leaksPassword(run)).toBe(false);
    const file = JSON.parse(await readFile(ids, "utf8")) as {
      nodes: (File["nodes"][number] & { role: string })[];
    };
    const op = file.nodes.find((n) => n.name === "ops-1")!;
    expect(op.role).toBe("operator");
    for (const s of [a, b]) {
      // The same id on both servers, in nxs_operators (not a gateway account), and it logs in.
      expect((await s.client().collection("nxs_operators").getOne(op.id)).email).toBe(op.email);
      await expect(s.client().collection("nxs_nodes").getOne(op.id)).rejects.toMatchObject({ status: 404 });
      const pb = new PocketBase(s.url);
      pb.autoCancellation(false);
      await pb.collection("nxs_operators").authWithPassword(op.email, op.password);
      expect((await pb.collection("nxs_metrics_points").getList(1, 1)).items).toEqual([]);
      expect((await pb.collection("nxs_nodes").getList(1, 1)).totalItems).toBe(0);
    }
    // setup reads the file again: the operator stays an operator, nothing changes.
    const setup = await cli(["setup", ...serverArgs([a, b]), "--identities", ids, "--json"]);
    expect(setup.code, setup.stderr).toBe(CliExitCode.Ok);
    expect(setup.json<{ changes: number }>().changes).toBe(0);
    // Adding the name again as another role is refused; an unknown role is a usage error.
    const clash = await cli([
      "node",
      "add",
      "ops-1",
      "--role",
      "gateway",
      ...serverArgs([a, b]),
      "--identities",
      ids,
    ]);
    expect(clash.code).toBe(CliExitCode.Usage);
    expect(clash.stderr).toMatch(/ops-1 with role operator, not gateway/);
    const bad = await cli([
      "node",
      "add",
      "x-1",
      "--role",
      "admin",
      ...serverArgs([a, b]),
      "--identities",
      ids,
    ]);
    expect(bad.code).toBe(CliExitCode.Usage);
    expect(bad.stderr).toMatch(/--role "admin" is not one of gateway, operator/);
    expect((JSON.parse(await readFile(ids, "utf8")) as File).nodes.some((n) => n.name === "x-1")).toBe(false);
  });

  it("rotate: a new token key on every server refuses the node's old tokens on both; the password still logs in", async () => {
    const gw = (await readFile_(ids)).nodes.find((n) => n.name === "gw-2")!;
    const ta = await login(a.url, gw.email, gw.password);
    const tb = await login(b.url, gw.email, gw.password);
    expect(await accepted(a.url, ta)).toBe(true);
    expect(await accepted(b.url, tb)).toBe(true);
    const run = await cli(["node", "rotate", "gw-2", ...serverArgs([a, b]), "--identities", ids]);
    expect(run.code, run.stderr).toBe(CliExitCode.Ok);
    expect(run.stdout).toMatch(/sessions are revoked/);
    expect(await accepted(a.url, ta)).toBe(false);
    expect(await accepted(b.url, tb)).toBe(false);
    expect(await accepted(a.url, await login(a.url, gw.email, gw.password))).toBe(true);
    // --password: a new password, in the file; the old one is refused.
    await cli(["node", "rotate", "gw-2", ...serverArgs([a, b]), "--identities", ids, "--password"]);
    const after = (await readFile_(ids)).nodes.find((n) => n.name === "gw-2")!;
    expect(after.password).not.toBe(gw.password);
    await expect(login(b.url, gw.email, gw.password)).rejects.toMatchObject({ status: 400 });
    await login(b.url, after.email, after.password);
  });

  it("rotate refuses (exit 2, nothing changed) when a server lacks the account", async () => {
    const added = await cli(["node", "add", "gw-3", "--server", a.url, "--identities", ids, "--json"]);
    expect(added.code, added.stderr).toBe(0);
    const gw3 = (await readFile_(ids)).nodes.find((n) => n.name === "gw-3")!;
    const token = await login(a.url, gw3.email, gw3.password);
    const run = await cli(["node", "rotate", "gw-3", ...serverArgs([a, b]), "--identities", ids]);
    expect(run.code).toBe(CliExitCode.Usage);
    expect(run.stderr).toMatch(/no such account at .*nothing was changed/);
    expect(await accepted(a.url, token)).toBe(true);
    // status shows the account missing on b, and the fleet not converged until it is added there.
    const status = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    expect(status.members.find((m) => m.id === gw3.id)?.on).toEqual([a.url]);
    expect(status.converged).toBe(false);
    expect((await cli(["node", "add", "gw-3", ...serverArgs([a, b]), "--identities", ids])).code).toBe(0);
    expect((await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>().converged).toBe(true);
  });

  it("disable locks the node out everywhere (idempotent, setup leaves it locked); enable lets it back", async () => {
    const gw = (await readFile_(ids)).nodes.find((n) => n.name === "gw-2")!;
    const token = await login(a.url, gw.email, gw.password);
    const run = await cli(["node", "disable", "gw-2", ...serverArgs([a, b]), "--identities", ids, "--json"]);
    expect(run.json()).toMatchObject({ changed: true });
    expect(await accepted(a.url, token)).toBe(false);
    for (const s of [a, b])
      await expect(login(s.url, gw.email, gw.password)).rejects.toMatchObject({ status: 400 });
    expect(
      (await cli(["node", "disable", "gw-2", ...serverArgs([a, b]), "--identities", ids, "--json"])).json(),
    ).toMatchObject({ changed: false });
    expect((await readFile_(ids)).nodes.find((n) => n.name === "gw-2")?.disabled).toBe(true);
    expect((await cli(["setup", ...serverArgs([a, b]), "--identities", ids, "--json"])).json()).toMatchObject(
      { changes: 0 },
    );
    await expect(login(a.url, gw.email, gw.password)).rejects.toMatchObject({ status: 400 });
    const enable = await cli(["node", "enable", "gw-2", ...serverArgs([a, b]), "--identities", ids]);
    expect(enable.code, enable.stderr).toBe(0);
    for (const s of [a, b]) await login(s.url, gw.email, gw.password);
  });

  it("remove refuses a node whose change records refer to it (exit 2, names disable), and changes nothing", async () => {
    const node1 = (await readFile_(ids)).nodes[0]!;
    await writeChanges(b.url, node1, "kept", 1, 1); // on the second server only: checked before any delete
    const run = await cli(["node", "remove", node1.name, ...serverArgs([a, b]), "--identities", ids]);
    expect(run.code).toBe(CliExitCode.Usage);
    expect(run.stderr).toMatch(/node disable/);
    expect(run.stderr).toMatch(/nothing was changed/);
    for (const s of [a, b])
      expect((await s.client().collection("nxs_nodes").getOne(node1.id)).id).toBe(node1.id);
    expect((await readFile_(ids)).nodes.some((n) => n.id === node1.id)).toBe(true);
  });

  it("remove deletes the account everywhere, idempotently; an unknown node is a usage error", async () => {
    const gw = (await readFile_(ids)).nodes.find((n) => n.name === "gw-2")!;
    const run = await cli(["node", "remove", "gw-2", ...serverArgs([a, b]), "--identities", ids, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    for (const s of [a, b])
      await expect(s.client().collection("nxs_nodes").getOne(gw.id)).rejects.toMatchObject({ status: 404 });
    expect((await readFile_(ids)).nodes.some((n) => n.id === gw.id)).toBe(false);
    const status = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    expect(status.members.some((m) => m.id === gw.id)).toBe(false);
    const again = await cli(["node", "remove", "gw-2", ...serverArgs([a, b]), "--identities", ids]);
    expect(again.code).toBe(CliExitCode.Usage);
    expect(again.stderr).toMatch(/no node "gw-2"/);
  });
});
