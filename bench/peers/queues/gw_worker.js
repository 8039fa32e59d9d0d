// A graphile-worker process for bench/peers/queues.sh: a no-op task `t`,
// `jobs` at once, with its local queue of `lq` jobs when lq > 0.
const { run } = require("graphile-worker");

const [url, jobs, lq] = process.argv.slice(2);
const worker = {
  connectionString: url,
  concurrentJobs: Number(jobs),
  maxPoolSize: Math.max(10, Math.min(Number(jobs) + 2, 40)),
};
if (Number(lq) > 0) worker.localQueue = { size: Number(lq) };

run({ preset: { worker }, taskList: { t: async () => {} } })
  .then((runner) => runner.promise)
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
