// docs/writing-a-device-plugin.md works as written, without /dev/kvm: every command of its `sh`
// blocks runs (in order, from vmon's folder, with the guide's `../my-counter` put in a temporary
// folder), exits 0, and prints the lines of the `text` block that follows it in the guide.

import { ok } from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../core/cache.ts";

const GUIDE = join(REPO_ROOT, "docs", "writing-a-device-plugin.md");

/** One command of the guide and the lines the guide says it prints (if it says). */
interface GuideCommand {
  readonly command: string;
  readonly prints: readonly string[];
}

/**
 * The commands of the guide's `sh` blocks (lines continued with `\` joined), each with the lines
 * of a `text` block that follows its block, which belong to the block's last command.
 */
function guideCommands(markdown: string): GuideCommand[] {
  const out: { command: string; prints: string[] }[] = [];
  for (const m of markdown.matchAll(/```(sh|text)\n([\s\S]*?)```/g)) {
    const body = m[2]!;
    if (m[1] === "text") {
      const last = out.at(-1);
      if (last !== undefined) last.prints.push(...body.split("\n").filter((l) => l.trim()));
      continue;
    }
    for (const command of body.replace(/\\\n\s*/g, "").split("\n")) {
      if (command.trim() !== "") out.push({ command: command.trim(), prints: [] });
    }
  }
  return out;
}

/** The environment of a user's shell: this one without `deno task`'s INIT_CWD. */
function userEnv(): Record<string, string> {
  const { INIT_CWD: _initCwd, ...env } = Deno.env.toObject();
  return { ...env, NO_COLOR: "1" };
}

Deno.test("the device-plugin guide's commands run and print what it says", async (t) => {
  const commands = guideCommands(Deno.readTextFileSync(GUIDE));
  // new-plugin, its test, a run, the bundle, a run of the bundle.
  ok(commands.length >= 5, commands.map((c) => c.command).join("\n"));
  ok(commands.some((c) => c.command.includes("--exec") && c.command.includes("devmem")));
  ok(!commands.some((c) => /--image (hello|smp|exits|memtest|crash)\b/.test(c.command)));
  const dir = await Deno.makeTempDir({ prefix: "vmon-guide-test-" });
  try {
    for (const { command, prints } of commands) {
      const line = command.replaceAll("../my-counter", join(dir, "my-counter"));
      await t.step(command.slice(0, 90), async () => {
        const out = await new Deno.Command("sh", {
          args: ["-c", line],
          cwd: REPO_ROOT,
          clearEnv: true,
          env: userEnv(),
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(out.stdout);
        const stderr = new TextDecoder().decode(out.stderr);
        const report = `$ ${line}\n--- status ${out.code}\n--- stdout\n${
          stdout.slice(-3000)
        }\n--- stderr\n${stderr.slice(-3000)}`;
        ok(out.code === 0, report);
        const lines = stdout.split(/\r?\n/).map((l) => l.trimEnd());
        for (const want of prints) ok(lines.includes(want), `no line "${want}"\n${report}`);
        if (command.includes("--stats")) {
          ok(/my-counter\s*│\s*3 │/.test(stderr), `no exits of my-counter\n${report}`);
          ok(/bumps\s*│\s*2 │/.test(stderr), `no bumps counter\n${report}`);
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
