import { checkPluginDefinition, definePlugin } from "./define_plugin.ts";
import { VmonError } from "./errors.ts";
import type { PluginDefinition } from "./api/mod.ts";

function throwsVmon(fn: () => unknown, includes: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof VmonError)) throw new Error(`expected VmonError, got ${e}`);
    if (!e.message.includes(includes)) {
      throw new Error(`message ${JSON.stringify(e.message)} lacks ${JSON.stringify(includes)}`);
    }
    return;
  }
  throw new Error(`expected an error containing ${JSON.stringify(includes)}`);
}

const good = {
  name: "my-dev2",
  kind: "device",
  apiVersion: 1,
  description: "A test device",
  options: { base: { type: "integer", description: "Port", default: 0x3f8, min: 0, max: 0xffff } },
  setup() {
    return { dispose() {} };
  },
} as const;

Deno.test("definePlugin returns the checked definition unchanged", () => {
  const def = definePlugin(good);
  if (def !== good) throw new Error("not the same object");
});

Deno.test("definePlugin types options from the schema", () => {
  const def = definePlugin({
    name: "typed",
    kind: "device",
    apiVersion: 1,
    description: "d",
    options: {
      on: { type: "boolean", description: "x", default: true },
      n: { type: "integer", description: "y" },
    },
    setup(_host, options) {
      const on: boolean = options.on;
      const n: number | undefined = options.n;
      return { dispose: () => void [on, n] };
    },
  });
  if (def.kind !== "device") throw new Error("kind lost");
});

Deno.test("definePlugin refuses malformed definitions with clear errors", () => {
  const bad = (patch: Record<string, unknown>) => () =>
    definePlugin({ ...good, ...patch } as unknown as PluginDefinition);
  throwsVmon(bad({ name: "Bad_Name" }), 'Invalid plugin definition "Bad_Name": name must be');
  throwsVmon(bad({ name: "9x" }), "name must be lowercase");
  throwsVmon(bad({ name: 5 }), "got 5");
  throwsVmon(
    bad({ kind: "disk" }),
    'kind must be one of hostport, platform, device, paging, got "disk"',
  );
  throwsVmon(bad({ apiVersion: 0 }), "apiVersion must be a positive integer, got 0");
  throwsVmon(bad({ apiVersion: 1.5 }), "apiVersion must be a positive integer");
  throwsVmon(bad({ apiVersion: "1" }), "apiVersion must be a positive integer");
  throwsVmon(bad({ setup: "no" }), "setup must be a function");
  throwsVmon(bad({ description: undefined }), "description must be a string");
  throwsVmon(bad({ kind: "platform" }), "a platform plugin needs arch x86_64 or riscv64");
  throwsVmon(bad({ kind: "hostport", arch: "arm" }), 'got "arm"');
  throwsVmon(bad({ kind: "hostport", arch: "riscv64", warm: 1 }), "warm must be a function");
  throwsVmon(
    () => checkPluginDefinition(null, { source: "./x.ts" }),
    'Invalid plugin definition "./x.ts"',
  );
});

Deno.test("definePlugin checks the options schema", () => {
  const opt = (spec: unknown) => () =>
    definePlugin({ ...good, options: { o: spec } } as unknown as PluginDefinition);
  throwsVmon(opt({ type: "float", description: "d" }), 'option "o" has type "float"');
  throwsVmon(opt({ type: "string" }), 'option "o" needs a description');
  throwsVmon(
    opt({ type: "integer", description: "d", enum: ["a"] }),
    "has an enum but is not a string",
  );
  throwsVmon(
    opt({ type: "string", description: "d", enum: [] }),
    "enum must be a non-empty string array",
  );
  throwsVmon(opt({ type: "string", description: "d", min: 1 }), "has min but is not numeric");
  throwsVmon(opt({ type: "integer", description: "d", min: 5, max: 1 }), "has min 5 above max 1");
  throwsVmon(opt({ type: "integer", description: "d", default: "x" }), "default is invalid");
  throwsVmon(
    opt({ type: "integer", description: "d", default: 9, max: 8 }),
    "default is invalid: 9 is above the maximum 8",
  );
  throwsVmon(
    opt({ type: "string", description: "d", enum: ["a"], default: "b" }),
    "default is invalid",
  );
  throwsVmon(
    opt({ type: "size", description: "d", required: true, default: "4k" }),
    "is required and has a default",
  );
  throwsVmon(
    opt({ type: "size", description: "d", required: "yes" }),
    "required must be a boolean",
  );
  throwsVmon(
    () => definePlugin({ ...good, options: [] } as unknown as PluginDefinition),
    "options must be an object",
  );
  throwsVmon(
    () =>
      definePlugin(
        {
          ...good,
          options: { "1x": { type: "string", description: "d" } },
        } as unknown as PluginDefinition,
      ),
    'option name "1x"',
  );
  // A well-formed size default in string form is accepted.
  definePlugin({
    ...good,
    options: { ram: { type: "size", description: "d", default: "64M", max: 2 ** 30 } },
  });
});
