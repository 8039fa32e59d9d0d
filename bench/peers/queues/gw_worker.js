// A graphile-worker process for bench/peers/queues.sh: a no-op task `t`,
// `jobs` at once, with its local queue of `lq` jobs when lq > 0, and its
// completions batched (`completeJobBatchDelay`, in ms) when batch >= 0.
const { run } = require("graphile-worker");

const [url, jobs, lq, batch = "-1"] = process.argv.slice(2);
const worker = {
  connectionString: url,
  concurrentJobs: Number(jobs),
  maxPoolSize: Math.max(10, Math.min(Number(jobs) + 2, 40)),
};
if (Number(lq) > 0) worker.localQueue = { size: Number(lq) };
if (Number(batch) >= 0) {
  worker.completeJobBatchDelay = Number(batch);
  worker.failJobBatchDelay = Number(batch);
}

run({ preset: { worker }, taskList: { t: async () => {} } })
  .then((runner) => runner.promise)
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
