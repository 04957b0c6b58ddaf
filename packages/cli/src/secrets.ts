import { readSecrets, readSecretsDigest, writeSecrets } from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";

/** What `setup` did with one auth collection's token secrets. */
export interface SecretsSync {
  readonly collection: string;
  /** Servers whose secrets were (or, in a dry run, would be) set to the first server's. */
  readonly copiedTo: readonly string[];
  /** Servers that could not be read or written, with why (not an auth collection: none of this). */
  readonly problems: readonly string[];
}

/**
 * Gives every server the first server's token secrets and OAuth2 settings for each auth collection
 * replicated through the records piece, where they differ (a digest comparison first), so a token,
 * a reset link or a file token made by one server is accepted by the others. Base collections are
 * skipped (they have no secrets).
 * @param servers - Superuser clients, the source of truth first.
 * @param collections - The collections replicated through the records piece.
 * @param dryRun - Compare only.
 * @returns One entry per auth collection.
 */
export async function syncAuthSecrets(
  servers: readonly { readonly url: string; readonly pb: PocketBase }[],
  collections: readonly string[],
  dryRun: boolean,
): Promise<SecretsSync[]> {
  const out: SecretsSync[] = [];
  const [first, ...rest] = servers;
  if (first === undefined) return out;
  for (const collection of collections) {
    let source: Awaited<ReturnType<typeof readSecrets>>;
    try {
      source = await readSecrets(first.pb, collection);
    } catch (e) {
      // A base collection has no secrets; a missing one is reported by the replicator and status.
      if (/not an auth collection/.test((e as Error).message)) continue;
      out.push({ collection, copiedTo: [], problems: [`${first.url}: ${(e as Error).message}`] });
      continue;
    }
    const copiedTo: string[] = [];
    const problems: string[] = [];
    for (const s of rest) {
      try {
        if ((await readSecretsDigest(s.pb, collection)) === source.digest) continue;
        if (!dryRun) await writeSecrets(s.pb, collection, source.secrets);
        copiedTo.push(s.url);
      } catch (e) {
        problems.push(`${s.url}: ${(e as Error).message}`);
      }
    }
    out.push({ collection, copiedTo, problems });
  }
  return out;
}
