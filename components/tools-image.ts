import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

/**
 * Where the tools image is built from and how it is tagged. The image compiles the run-time itself (a
 * build stage in images/tools.Dockerfile), so its context is sources only. The tag is a hash of the
 * Dockerfile, exactly the files the build context admits and the build args, so an unchanged package
 * never pushes a new image and the IMMUTABLE repository never sees a tag reused for different content.
 */

export const PACKAGE_NAME = "container-native-db";
export const TOOLS_DOCKERFILE = "images/tools.Dockerfile";
/** BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile for that build's context. */
export const TOOLS_DOCKERIGNORE = `${TOOLS_DOCKERFILE}.dockerignore`;
/** The run-time the image runs, compiled in its build stage (tsconfig.image.json). */
export const TOOLS_ENTRY = "bin/runtime/cli.js";

/**
 * What the build context admits, and so what the tag hashes: these files and directories of the package
 * root, minus Markdown (docs don't change the image). TOOLS_DOCKERIGNORE must say the same
 * (`dockerignoreRules` renders it; a unit test compares them).
 */
export const CONTEXT = {
  files: ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.image.json"],
  dirs: ["common", "runtime"],
  exclude: /\.md$/,
} as const;

/** What the build stage cannot do without: its COPY sources and the entry it compiles. */
export const CONTEXT_REQUIRED = ["package.json", "tsconfig.json", "tsconfig.image.json", "common", "runtime/cli.ts"] as const;

/** The CONTEXT_REQUIRED paths missing under `root` (an installed copy without sources, a wrong contextDir). */
export function missingContext(root: string): string[] {
  return CONTEXT_REQUIRED.filter((f) => !existsSync(path.join(root, f)));
}

/** The active lines TOOLS_DOCKERIGNORE must hold for CONTEXT: everything out, then CONTEXT back in. */
export function dockerignoreRules(): string[] {
  return ["*", ...CONTEXT.files.map((f) => `!${f}`), ...CONTEXT.dirs.map((d) => `!${d}/`), "**/*.md"];
}

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
    if (CONTEXT.exclude.test(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, root, out);
    else if (e.isFile()) out.push(path.relative(root, p).split(path.sep).join("/"));
  }
}

/** The files the build context admits (CONTEXT), relative to the root, sorted. Missing ones are skipped. */
export function contextFiles(root: string): string[] {
  const files = CONTEXT.files.filter((f) => existsSync(path.join(root, f)));
  for (const d of CONTEXT.dirs) {
    const dir = path.join(root, d);
    if (existsSync(dir) && statSync(dir).isDirectory()) walk(dir, root, files);
  }
  return files.sort();
}

/** `tools-<16 hex>` from the Dockerfile, the context files' names and contents, and the build args. */
export function toolsImageTag(root: string, buildArgs: Record<string, string>): string {
  const h = createHash("sha256");
  for (const f of [TOOLS_DOCKERFILE, ...contextFiles(root)]) {
    const p = path.join(root, f);
    if (existsSync(p)) h.update(f).update("\0").update(readFileSync(p)).update("\0");
  }
  for (const k of Object.keys(buildArgs).sort()) h.update(`${k}=${buildArgs[k]}\n`);
  return `tools-${h.digest("hex").slice(0, 16)}`;
}
