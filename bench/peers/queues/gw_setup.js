// Creates graphile-worker's schema in the database at argv[2].
const { makeWorkerUtils } = require("graphile-worker");

(async () => {
  const utils = await makeWorkerUtils({ connectionString: process.argv[2] });
  await utils.migrate();
  await utils.release();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
