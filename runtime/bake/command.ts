import type { Command } from "commander";

export function register(program: Command): void {
  program.command("bake").description("(in progress)").action(() => {
    throw new Error("bake: not implemented yet");
  });
}
