import type { Command } from "commander";

export function register(program: Command): void {
  program.command("replica").description("(in progress)").action(() => {
    throw new Error("replica: not implemented yet");
  });
}
