import type { ApiConfigInput } from "../api";
import { DEMO_SCHEMA } from "./demo-data";

/** The read API config local mode uses for its own demo master (no --api-config): named queries over the demo. */
export const DEMO_API_CONFIG: ApiConfigInput = {
  queries: {
    best_trials: {
      description: "the best-scoring finished trials of one experiment",
      sql: `SELECT id, trial_no, algorithm, score, hyperparameters FROM ${DEMO_SCHEMA}.trials
            WHERE experiment_id = $1 AND status = 'succeeded' AND score IS NOT NULL ORDER BY score DESC, id LIMIT $2`,
      params: [
        { name: "experiment", type: "bigint" },
        { name: "limit", type: "integer", default: 10 },
      ],
    },
    project_summary: {
      description: "experiments, trials and the best score of one project",
      sql: `SELECT p.id, p.name, count(DISTINCT e.id) AS experiments, count(t.id) AS trials, max(t.score) AS best_score
            FROM ${DEMO_SCHEMA}.projects p JOIN ${DEMO_SCHEMA}.experiments e ON e.project_id = p.id
            LEFT JOIN ${DEMO_SCHEMA}.trials t ON t.experiment_id = e.id WHERE p.id = $1 GROUP BY p.id, p.name`,
      params: [{ name: "project", type: "bigint" }],
    },
  },
};
