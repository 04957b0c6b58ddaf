/**
 * Renders rows as a plain table (columns padded, a header rule), as `patronictl list` prints.
 * @param headers - Column names.
 * @param rows - Cells (strings).
 * @returns The table, one line per row, ending with a newline.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const rule = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  return `${[rule, line(headers), rule, ...rows.map(line), rule].join("\n")}\n`;
}

/**
 * A JSON document for `--json` (stable key order as built, two-space indent).
 * @param value - The document.
 * @returns Its text with a trailing newline.
 */
export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
