import pg from "pg";

/**
 * The demo dataset: an AutoML service (the kind of system that motivated container-native data
 * persistence): projects, datasets, experiments, trials with hyperparameters as jsonb, models and
 * metrics. Deterministic (values come from md5 of the row number, not random()), about 1M rows at
 * scale 1.
 */
export const DEMO_SCHEMA = "automl";

export interface DemoCounts {
  projects: number;
  datasets: number;
  experiments: number;
  trials: number;
  models: number;
  metrics: number;
}

/** Row counts at a scale; scale 1 is about 1M rows in all. */
export function demoCounts(scale = 1): DemoCounts {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`demo scale must be a positive number (got ${scale})`);
  const n = (x: number) => Math.max(1, Math.round(x * scale));
  return { projects: n(1_000), datasets: n(8_000), experiments: n(30_000), trials: n(400_000), models: n(40_000), metrics: n(520_000) };
}

const ALGORITHMS = ["xgboost", "lightgbm", "random_forest", "logistic_regression", "mlp", "svm", "catboost", "tabnet"];
const TASKS = ["classification", "regression", "forecasting", "ranking"];
const STATUS = ["succeeded", "succeeded", "succeeded", "failed", "running", "cancelled"];

const sqlArray = (xs: string[]) => `ARRAY[${xs.map((x) => `'${x}'`).join(",")}]`;

/** Statements in load order; `c` sizes them. Every value is a pure function of the row id. */
export function demoStatements(c: DemoCounts): { label: string; sql: string }[] {
  // r(i, salt) in [0,1): deterministic, portable across PostgreSQL versions.
  const r = (i: string, salt: number) => `pg_temp.r(${i}, ${salt})`;
  const pick = (arr: string[], i: string, salt: number) => `(${sqlArray(arr)})[1 + floor(${r(i, salt)} * ${arr.length})::int]`;
  const ts = (i: string, salt: number) => `timestamptz '2024-01-01 00:00:00+00' + (${r(i, salt)} * interval '700 days')`;
  return [
    {
      label: "functions",
      sql: `CREATE FUNCTION pg_temp.r(i bigint, salt int) RETURNS double precision LANGUAGE sql IMMUTABLE AS
            $$ SELECT ('x' || substr(md5(i::text || ':' || salt::text), 1, 8))::bit(32)::bigint / 4294967296.0 $$`,
    },
    {
      label: "schema",
      sql: `CREATE SCHEMA ${DEMO_SCHEMA};
        CREATE TYPE ${DEMO_SCHEMA}.run_status AS ENUM ('running','succeeded','failed','cancelled');
        CREATE TABLE ${DEMO_SCHEMA}.projects (id bigint PRIMARY KEY, name text NOT NULL, owner text NOT NULL,
          tags text[] NOT NULL, created_at timestamptz NOT NULL);
        CREATE TABLE ${DEMO_SCHEMA}.datasets (id bigint PRIMARY KEY, project_id bigint NOT NULL, name text NOT NULL,
          format text NOT NULL, row_count bigint NOT NULL, column_count int NOT NULL, size_bytes bigint NOT NULL,
          created_at timestamptz NOT NULL);
        CREATE TABLE ${DEMO_SCHEMA}.experiments (id bigint PRIMARY KEY, project_id bigint NOT NULL,
          dataset_id bigint NOT NULL, name text NOT NULL, task text NOT NULL, objective text NOT NULL,
          status ${DEMO_SCHEMA}.run_status NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz);
        CREATE TABLE ${DEMO_SCHEMA}.trials (id bigint PRIMARY KEY, experiment_id bigint NOT NULL, trial_no int NOT NULL,
          algorithm text NOT NULL, hyperparameters jsonb NOT NULL, status ${DEMO_SCHEMA}.run_status NOT NULL,
          score double precision, duration_ms int NOT NULL, started_at timestamptz NOT NULL);
        CREATE TABLE ${DEMO_SCHEMA}.models (id bigint PRIMARY KEY, trial_id bigint NOT NULL UNIQUE,
          experiment_id bigint NOT NULL, name text NOT NULL, framework text NOT NULL, artifact_uri text NOT NULL,
          size_bytes bigint NOT NULL, deployed boolean NOT NULL, created_at timestamptz NOT NULL);
        CREATE TABLE ${DEMO_SCHEMA}.metrics (trial_id bigint NOT NULL, name text NOT NULL, step int NOT NULL,
          value double precision NOT NULL, PRIMARY KEY (trial_id, name, step));
        COMMENT ON SCHEMA ${DEMO_SCHEMA} IS 'container-native-db demo: an AutoML service';`,
    },
    {
      label: "projects",
      sql: `INSERT INTO ${DEMO_SCHEMA}.projects
        SELECT i, 'project-' || i, 'team-' || (1 + floor(${r("i", 1)} * 50))::int,
          ARRAY['tabular', ${pick(["vision", "nlp", "timeseries", "fraud", "churn", "pricing"], "i", 2)}], ${ts("i", 3)}
        FROM generate_series(1, ${c.projects}) i`,
    },
    {
      label: "datasets",
      sql: `INSERT INTO ${DEMO_SCHEMA}.datasets
        SELECT i, 1 + (i % ${c.projects}), 'dataset-' || i, ${pick(["parquet", "csv", "jsonl", "arrow"], "i", 4)},
          (1000 + ${r("i", 5)} * 10000000)::bigint, (5 + ${r("i", 6)} * 300)::int, (100000 + ${r("i", 7)} * 5e9)::bigint,
          ${ts("i", 8)}
        FROM generate_series(1, ${c.datasets}) i`,
    },
    {
      label: "experiments",
      sql: `INSERT INTO ${DEMO_SCHEMA}.experiments
        SELECT i, 1 + (i % ${c.projects}), 1 + (i % ${c.datasets}), 'experiment-' || i, ${pick(TASKS, "i", 9)},
          ${pick(["accuracy", "auc", "rmse", "mae", "ndcg", "f1"], "i", 10)},
          ${pick(STATUS, "i", 11)}::${DEMO_SCHEMA}.run_status, ${ts("i", 12)},
          CASE WHEN ${r("i", 13)} < 0.9 THEN ${ts("i", 12)} + ${r("i", 14)} * interval '3 days' END
        FROM generate_series(1, ${c.experiments}) i`,
    },
    {
      label: "trials",
      sql: `INSERT INTO ${DEMO_SCHEMA}.trials
        SELECT i, 1 + (i % ${c.experiments}), 1 + (i / ${c.experiments})::int, ${pick(ALGORITHMS, "i", 15)},
          jsonb_build_object('learning_rate', round((0.0001 + ${r("i", 16)} * 0.3)::numeric, 5),
            'max_depth', (2 + ${r("i", 17)} * 14)::int, 'n_estimators', (50 + ${r("i", 18)} * 950)::int,
            'subsample', round((0.5 + ${r("i", 19)} * 0.5)::numeric, 3),
            'regularization', jsonb_build_object('l1', round((${r("i", 20)})::numeric, 4), 'l2', round((${r("i", 21)})::numeric, 4))),
          ${pick(STATUS, "i", 22)}::${DEMO_SCHEMA}.run_status,
          CASE WHEN ${r("i", 23)} < 0.95 THEN round((0.5 + ${r("i", 24)} * 0.5)::numeric, 6)::double precision END,
          (100 + ${r("i", 25)} * 3600000)::int, ${ts("i", 26)}
        FROM generate_series(1, ${c.trials}) i`,
    },
    {
      label: "models",
      sql: `INSERT INTO ${DEMO_SCHEMA}.models
        SELECT i, t, 1 + (t % ${c.experiments}), 'model-' || i, ${pick(["sklearn", "xgboost", "lightgbm", "pytorch", "onnx"], "i", 27)},
          's3://automl-artifacts/models/' || i || '/model.bin', (10000 + ${r("i", 28)} * 2e9)::bigint,
          ${r("i", 29)} < 0.1, ${ts("i", 30)}
        FROM (SELECT i, 1 + ((i * 7919) % ${c.trials}) AS t FROM generate_series(1, ${c.models}) i) s`,
    },
    {
      label: "metrics",
      sql: `INSERT INTO ${DEMO_SCHEMA}.metrics
        SELECT 1 + (i / 4) % ${c.trials}, (ARRAY['accuracy','loss','auc','f1'])[1 + i % 4], (i / (4 * ${c.trials}))::int,
          round((${r("i", 31)})::numeric, 6)::double precision
        FROM generate_series(0, ${c.metrics - 1}) i`,
    },
    {
      label: "indexes",
      sql: `ALTER TABLE ${DEMO_SCHEMA}.datasets ADD FOREIGN KEY (project_id) REFERENCES ${DEMO_SCHEMA}.projects;
        ALTER TABLE ${DEMO_SCHEMA}.experiments ADD FOREIGN KEY (project_id) REFERENCES ${DEMO_SCHEMA}.projects,
          ADD FOREIGN KEY (dataset_id) REFERENCES ${DEMO_SCHEMA}.datasets;
        ALTER TABLE ${DEMO_SCHEMA}.trials ADD FOREIGN KEY (experiment_id) REFERENCES ${DEMO_SCHEMA}.experiments;
        ALTER TABLE ${DEMO_SCHEMA}.models ADD FOREIGN KEY (trial_id) REFERENCES ${DEMO_SCHEMA}.trials,
          ADD FOREIGN KEY (experiment_id) REFERENCES ${DEMO_SCHEMA}.experiments;
        ALTER TABLE ${DEMO_SCHEMA}.metrics ADD FOREIGN KEY (trial_id) REFERENCES ${DEMO_SCHEMA}.trials;
        CREATE INDEX ON ${DEMO_SCHEMA}.experiments (project_id);
        CREATE INDEX ON ${DEMO_SCHEMA}.trials (experiment_id, score DESC);
        CREATE INDEX ON ${DEMO_SCHEMA}.trials USING gin (hyperparameters jsonb_path_ops);
        CREATE INDEX ON ${DEMO_SCHEMA}.models (experiment_id);
        ANALYZE;`,
    },
  ];
}

/** Loads the demo dataset in one transaction (nothing half-loaded on failure). */
export async function loadDemoData(
  client: pg.ClientBase,
  opts: { scale?: number; onProgress?: (label: string, done: number, total: number) => void } = {},
): Promise<DemoCounts> {
  const counts = demoCounts(opts.scale);
  const steps = demoStatements(counts);
  await client.query("BEGIN");
  try {
    for (const [i, s] of steps.entries()) {
      opts.onProgress?.(s.label, i, steps.length);
      await client.query(s.sql);
    }
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  }
  opts.onProgress?.("done", steps.length, steps.length);
  return counts;
}
