/**
 * Child process for heap measurements: `node --expose-gc --import tsx heap-child.ts <module> <export> <fn>`.
 * Imports the module, forces GC, notes JS heap + external memory (which includes WebAssembly
 * memory, where Automerge keeps its state), builds the value, forces GC again, and prints the
 * retained MiB as JSON. A fresh process per measurement: no memory left over by other subjects.
 */
const [modulePath, exportName] = process.argv.slice(2);
const mod = (await import(modulePath!)) as Record<string, () => unknown>;
const build = mod[exportName!];
if (typeof build !== "function") throw new Error(`${modulePath} has no function ${exportName}`);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};
gc();
gc();
const before = used();
const kept = build();
gc();
gc();
const after = used();
process.stdout.write(JSON.stringify({ mib: (after - before) / 2 ** 20, alive: kept !== undefined }));
