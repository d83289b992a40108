// Group commit: writes of one turn share one transaction; each caller learns that
// transaction's result, and what runs after a commit cannot turn it into a failure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from '../../standalone/group-commit.ts';

test('items added in one turn are written in one transaction; committed runs after each commit; every caller resolves with its commit', async () => {
  const order: string[] = [];
  const commit = new GroupCommit<number>({ write: (items) => { order.push(`write ${items.join(',')}`); }, committed: () => order.push('committed') });
  await Promise.all([1, 2, 3].map((n) => commit.add(n).then(() => order.push(`resolved ${n}`))));
  await commit.add(4);
  assert.deepEqual(order, ['write 1,2,3', 'committed', 'resolved 1', 'resolved 2', 'resolved 3', 'write 4', 'committed']);
});

test('a rolled-back transaction rejects every caller of it with the mapped error, and nothing is reported committed', async () => {
  let committed = 0;
  const commit = new GroupCommit<number>({
    write: () => { throw new Error('disk I/O error'); },
    failed: (error) => new Error(`not stored: ${error.message}`),
    committed: () => committed++,
  });
  const results = await Promise.allSettled([commit.add(1), commit.add(2)]);
  assert.deepEqual(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'stored')), ['not stored: disk I/O error', 'not stored: disk I/O error']);
  assert.equal(committed, 0);
});
