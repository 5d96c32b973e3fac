#!/usr/bin/env node
import { Command } from "commander";
import { register as registerApi } from "./api/command";
import { register as registerBake } from "./bake/command";
import { register as registerLocal } from "./local/command";
import { register as registerReplica } from "./reader/command";

/** `cndb`: the run-time entry point, the same in the containers and in local mode. */
export function buildProgram(): Command {
  const program = new Command("cndb")
    .description("container-native-db run-time: bake snapshots, serve read-only replicas and the read API, run it all locally")
    .showHelpAfterError()
    .exitOverride();
  for (const register of [registerBake, registerReplica, registerApi, registerLocal]) register(program);
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
