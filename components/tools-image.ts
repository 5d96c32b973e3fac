import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

/**
 * Where the tools image is built from and how it is tagged. The tag is a hash of exactly what the build
 * context admits (images/tools.Dockerfile.dockerignore) plus the build args, so an unchanged package never
 * pushes a new image and the IMMUTABLE repository never sees a tag reused for different content.
 */

export const PACKAGE_NAME = "container-native-db";
export const TOOLS_DOCKERFILE = "images/tools.Dockerfile";
/** The built run-time the image runs (`npm run build`). */
export const TOOLS_ENTRY = "bin/runtime/cli.js";

/** The package root (the build context): the nearest directory upwards whose package.json is this package. */
export function packageRoot(from: string = __dirname): string {
  let dir = path.resolve(from);
  for (;;) {
    const pj = path.join(dir, "package.json");
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, "utf8")) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // not ours; keep looking upwards
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the ${PACKAGE_NAME} package root above ${from}`);
    dir = up;
  }
}

function walk(dir: string, root: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, root, out);
    // Source maps and declarations are kept out of the context (tools.Dockerfile.dockerignore).
    else if (e.isFile() && !/\.(map|d\.ts)$/.test(e.name)) out.push(path.relative(root, p));
  }
}

/** Files that enter the image: package.json, package-lock.json, bin/** (no maps/declarations) and the Dockerfile. */
export function contextFiles(root: string): string[] {
  const files = ["package.json", "package-lock.json", TOOLS_DOCKERFILE].filter((f) => existsSync(path.join(root, f)));
  const bin = path.join(root, "bin");
  if (existsSync(bin) && statSync(bin).isDirectory()) walk(bin, root, files);
  return files.sort();
}

/** `tools-<16 hex>` from the context files' names and contents and the build args. */
export function toolsImageTag(root: string, buildArgs: Record<string, string>): string {
  const h = createHash("sha256");
  for (const f of contextFiles(root)) {
    h.update(f).update("\0").update(readFileSync(path.join(root, f))).update("\0");
  }
  for (const k of Object.keys(buildArgs).sort()) h.update(`${k}=${buildArgs[k]}\n`);
  return `tools-${h.digest("hex").slice(0, 16)}`;
}

/** Whether `npm run build` has produced the run-time the image needs. */
export function runtimeBuilt(root: string): boolean {
  return existsSync(path.join(root, TOOLS_ENTRY));
}
