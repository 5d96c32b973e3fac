/**
 * `cndb api` as the CLI runs it, but with the request log off: B5's diagnostic arm, to show what the
 * per-request log line costs. argv: <port> <snapshotDir> <replicaUrl>...
 */
import { serveApi } from "../../runtime/api/command";

async function main(): Promise<void> {
  const [port, snapshotDir, ...replicas] = process.argv.slice(2);
  const api = await serveApi({ replicas, snapshotDir, port: Number(port), listen: "127.0.0.1", logger: false });
  const stop = () => void api.close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((e: Error) => {
  console.error(`api-child: ${e.message}`);
  process.exit(1);
});
