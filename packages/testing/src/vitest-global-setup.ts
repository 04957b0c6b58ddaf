/**
 * Vitest global setup of the integration project (see vitest.workspace.ts). Once per run, before any worker:
 * resolves the PocketBase binary and exports it as `POCKETBASE_BIN` (inherited by workers, also `provide`d as
 * `nxsPocketBaseBin`), checks the Docker engine (`provide`d as `nxsDocker`, env `NXS_DOCKER_STATUS`) and, when
 * one answers, builds the container image so the first container test does not pay for it.
 * @module
 */
import type { TestProject } from "vitest/node";
import { ensurePocketBaseBinary } from "./pocketbase-binary.js";
import { dockerAvailable, ensurePocketBaseImage } from "./pocketbase-container.js";
import type {} from "./vitest-hooks.js";

/**
 * The setup function vitest calls.
 *
 * @param project - the vitest project, used to `provide` values to tests
 * @throws HarnessError `harness/binary-not-found` when no PocketBase binary can be resolved (the run stops)
 */
export default async function setup(project: TestProject): Promise<void> {
  const started = performance.now();
  const bin = await ensurePocketBaseBinary();
  process.env.POCKETBASE_BIN = bin.path;
  project.provide("nxsPocketBaseBin", bin.path);
  let docker = await dockerAvailable();
  if (docker.available) {
    try {
      process.env.NXS_PB_IMAGE = await ensurePocketBaseImage({ bin: bin.path, version: bin.version });
    } catch (error) {
      docker = {
        available: false,
        reason: `the PocketBase image could not be built: ${(error as Error).message}`,
      };
    }
  }
  process.env.NXS_DOCKER_STATUS = JSON.stringify(docker);
  project.provide("nxsDocker", docker);
  const dockerText = docker.available
    ? `Docker ${docker.version} available`
    : `Docker UNAVAILABLE: ${docker.reason}`;
  process.stderr.write(
    `[nxs-harness] PocketBase ${bin.version} (${bin.source}) at ${bin.path}; ${dockerText}` +
      ` (setup ${Math.round(performance.now() - started)} ms)\n`,
  );
}
