import type { Command } from "commander";

export function register(program: Command): void {
  program.command("local").description("(in progress)").action(() => {
    throw new Error("local: not implemented yet");
  });
}
