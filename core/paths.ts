/**
 * POSIX path helpers with `node:path`'s results (`join`, `resolve`, `dirname`, `basename`,
 * `isAbsolute`, `relative`) and file URL conversions with `node:url`'s, for the modules a machine
 * worker loads at start-up: importing any `node:` module starts Deno's Node compatibility layer,
 * about 30 ms of the worker's start. vmon runs on Linux hosts only, so POSIX rules are the rules.
 * Other code keeps using `node:path`.
 *
 * @example
 * ```ts
 * import { join, toFileUrl } from "./paths.ts";
 * if (join("/a/b", "../c") !== "/a/c") throw new Error("join");
 * if (toFileUrl("/tmp/a b#1").href !== "file:///tmp/a%20b%231") throw new Error("url");
 * ```
 *
 * @module
 */

/** The separator of `PATH`-like lists. */
export const delimiter = ":";

/** Resolves `.` and `..` and repeated slashes in `path`; keeps a leading slash. */
function normalizeParts(path: string): string {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else {
      out.push(part);
    }
  }
  const body = out.join("/");
  return absolute ? `/${body}` : body;
}

/** Whether `path` is absolute (starts with a slash). */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/**
 * Joins the parts with slashes and normalizes the result (`"."` when it is empty), as
 * `node:path`'s `join`.
 */
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  if (joined === "") return ".";
  const trailing = joined.endsWith("/");
  const n = normalizeParts(joined);
  if (n === "") return trailing ? "./" : ".";
  return trailing && n !== "/" ? `${n}/` : n;
}

/**
 * The absolute path the parts name, from right to left until one is absolute, against the
 * current directory otherwise; normalized, without a trailing slash.
 */
export function resolve(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    const p = parts[i]!;
    if (p === "") continue;
    path = path === "" ? p : `${p}/${path}`;
  }
  if (!path.startsWith("/")) path = path === "" ? Deno.cwd() : `${Deno.cwd()}/${path}`;
  return normalizeParts(path) || "/";
}

/** The folder part of `path` (`"."` when there is none), as `node:path`'s `dirname`. */
export function dirname(path: string): string {
  if (path === "") return ".";
  let end = path.length;
  while (end > 1 && path[end - 1] === "/") end--;
  const cut = path.lastIndexOf("/", end - 1);
  if (cut < 0) return ".";
  return cut === 0 ? "/" : path.slice(0, cut);
}

/** The last part of `path`, without trailing slashes, as `node:path`'s `basename`. */
export function basename(path: string): string {
  let end = path.length;
  while (end > 0 && path[end - 1] === "/") end--;
  if (end === 0) return "";
  return path.slice(path.lastIndexOf("/", end - 1) + 1, end);
}

/** The path from `from` to `to` (both resolved first), as `node:path`'s `relative`. */
export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter((p) => p !== "");
  const b = resolve(to).split("/").filter((p) => p !== "");
  let same = 0;
  while (same < a.length && same < b.length && a[same] === b[same]) same++;
  return [...a.slice(same).map(() => ".."), ...b.slice(same)].join("/");
}

/**
 * The `file:` URL of a path (resolved against the current directory), with the characters a URL
 * path cannot hold percent-encoded, as `node:url`'s `pathToFileURL`.
 */
export function toFileUrl(path: string): URL {
  const full = resolve(path);
  const encoded = full.replace(/%/g, "%25").replace(/\\/g, "%5C").replace(/\n/g, "%0A")
    .replace(/\r/g, "%0D").replace(/\t/g, "%09");
  const url = new URL("file:///");
  url.pathname = path.endsWith("/") && full !== "/" ? `${encoded}/` : encoded;
  return url;
}

/**
 * The path of a `file:` URL (a URL object or its text), as `node:url`'s `fileURLToPath`.
 *
 * @throws {TypeError} For another scheme, a host, or an encoded slash.
 */
export function fromFileUrl(url: string | URL): string {
  const u = typeof url === "string" ? new URL(url) : url;
  if (u.protocol !== "file:") {
    throw new TypeError(`Cannot use "${u.href}" as a path: not a file URL`);
  }
  if (u.hostname !== "" && u.hostname !== "localhost") {
    throw new TypeError(`Cannot use "${u.href}" as a path: it names a host`);
  }
  if (/%2f/i.test(u.pathname)) {
    throw new TypeError(`Cannot use "${u.href}" as a path: it encodes a slash`);
  }
  return decodeURIComponent(u.pathname);
}
