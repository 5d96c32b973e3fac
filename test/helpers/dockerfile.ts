/**
 * Just enough of a Dockerfile reader for the tools image's tests: its stages with their COPY and RUN
 * instructions, continuation lines joined. Not a general parser (no heredocs, no JSON-form COPY/RUN).
 */

export interface DockerCopy {
  /** `--from=<stage>`; undefined when copying from the build context. */
  from?: string;
  sources: string[];
  dest: string;
}

export interface DockerStage {
  /** `AS <name>`; undefined for an unnamed (e.g. the final) stage. */
  name?: string;
  image: string;
  workdir?: string;
  copies: DockerCopy[];
  /** Shell-form RUN commands, in order. */
  runs: string[];
  /** Instructions in order, for replaying a stage: ["COPY", copy] or ["RUN", command]. */
  steps: (["COPY", DockerCopy] | ["RUN", string])[];
}

export function dockerfileStages(text: string): DockerStage[] {
  const lines: string[] = [];
  let cur = "";
  for (const raw of text.split("\n")) {
    if (/^\s*#/.test(raw)) continue; // comments (also inside a continued instruction) and parser directives
    const l = raw.replace(/\s+$/, "");
    if (l.endsWith("\\")) {
      cur += `${l.slice(0, -1)} `;
      continue;
    }
    cur += l;
    if (cur.trim() !== "") lines.push(cur.trim());
    cur = "";
  }
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const [, instr, rest] = /^(\w+)\s+([\s\S]*)$/.exec(line) ?? [];
    const stage = stages.at(-1);
    switch (instr?.toUpperCase()) {
      case "FROM": {
        const words = rest.split(/\s+/).filter((w) => !w.startsWith("--"));
        stages.push({ image: words[0], name: /^as$/i.test(words[1] ?? "") ? words[2] : undefined, copies: [], runs: [], steps: [] });
        break;
      }
      case "WORKDIR":
        if (stage) stage.workdir = rest.trim();
        break;
      case "COPY": {
        const words = rest.split(/\s+/);
        const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
        const paths = words.filter((w) => !w.startsWith("--"));
        const copy: DockerCopy = { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
        stage?.copies.push(copy);
        stage?.steps.push(["COPY", copy]);
        break;
      }
      case "RUN":
        stage?.runs.push(rest);
        stage?.steps.push(["RUN", rest]);
        break;
      default:
        break;
    }
  }
  return stages;
}
