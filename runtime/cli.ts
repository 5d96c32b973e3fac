#!/usr/bin/env node
import { Command } from "commander";

/** `cndb`: the run-time entry point, the same in the containers and in local mode. */
export function buildProgram(): Command {
  const program = new Command("cndb")
    .description("container-native-db run-time: bake snapshots, serve read-only replicas and the read API, run it all locally")
    .showHelpAfterError()
    .exitOverride();
  for (const mod of ["./bake/command", "./reader/command", "./api/command", "./local/command"]) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require(mod) as { register(p: Command): void }).register(program);
  }
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: Error & { code?: string; exitCode?: number }) => {
      if (e.code?.startsWith("commander.")) process.exit(e.exitCode ?? 2);
      console.error(`cndb: ${e.message}`);
      process.exit(1);
    });
}
