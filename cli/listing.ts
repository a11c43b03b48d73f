/**
 * `vmon plugins` and `vmon images`: tables of what can be loaded and booted.
 *
 * @module
 */

import Table from "cli-table3";
import type { PluginKind } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { listBuiltinPlugins, loadPlugin } from "../core/loader.ts";
import { listImages } from "../images/mod.ts";
import { formatPluginTable, KINDS, type PluginRow, tableStyle } from "./listing_format.ts";

function terminalWidth(): number {
  try {
    return Deno.stdout.isTerminal() ? Deno.consoleSize().columns : 120;
  } catch {
    return 120;
  }
}

/**
 * Runs `vmon plugins [refs...]`: prints the built-in plugins (optionally of one kind), plus any
 * plugins named by path or URL, as a table on stdout.
 *
 * @param refs Plugin paths or URLs to load and show as well.
 * @param options `kind` filters by kind; `json` prints JSON instead of a table.
 */
export async function pluginsCommand(
  refs: readonly string[],
  options: { kind?: string; json?: boolean } = {},
): Promise<void> {
  if (options.kind !== undefined && !KINDS.includes(options.kind as PluginKind)) {
    throw new VmonError(
      `Invalid --kind "${options.kind}": expected one of ${KINDS.join(", ")}`,
    );
  }
  const rows: PluginRow[] = [...await listBuiltinPlugins()];
  for (const ref of refs) {
    const def = await loadPlugin(ref, {});
    rows.push({
      name: def.name,
      kind: def.kind,
      description: def.description,
      options: def.options,
    });
  }
  const shown = rows.filter((row) => options.kind === undefined || row.kind === options.kind);
  if (options.json) {
    console.log(JSON.stringify(shown, null, 2));
    return;
  }
  console.log(formatPluginTable(shown, { width: terminalWidth(), style: tableStyle(Deno.stdout) }));
}

/**
 * Runs `vmon images`: prints the image registry (name, architecture, description) as a table.
 *
 * @param options `json` prints JSON instead of a table.
 */
export function imagesCommand(options: { json?: boolean } = {}): void {
  const images = listImages().map((image) => ({
    name: image.name,
    arch: image.arch,
    description: image.description,
  }));
  if (options.json) {
    console.log(JSON.stringify(images, null, 2));
    return;
  }
  const table = new Table({
    head: ["name", "arch", "description"],
    style: tableStyle(Deno.stdout),
  });
  for (const image of images) table.push([image.name, image.arch, image.description]);
  console.log(table.toString());
}
