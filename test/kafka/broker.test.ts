// The test broker itself: a random cluster id may start with "-", which the storage tool's
// argument parser once took for a flag (one run in 64 died at start).
// @needs kafka-own
// @limit 45s
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/resources.ts';
import { KafkaBroker, canConnect } from './broker.ts';

test('a cluster id starting with "-" formats the storage and the broker starts', async () => {
  const dir = tempDir('broker-id');
  const broker = new KafkaBroker({ dir, clusterId: '-dashStartsThisId00000' });
  try {
    await broker.start();
    assert.ok(await canConnect(broker.brokerPort));
    assert.match(readFileSync(path.join(dir, 'data', 'meta.properties'), 'utf8'), /^cluster\.id=-dashStartsThisId00000$/m);
  } finally {
    await broker.stop();
  }
});
