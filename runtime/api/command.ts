import type { Command } from "commander";

export function register(program: Command): void {
  program.command("api").description("(in progress)").action(() => {
    throw new Error("api: not implemented yet");
  });
}
