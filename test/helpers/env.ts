// What test/run.ts hands to every test file.
export function testKafka(): string {
  const bootstrap = process.env.MTRELAY_TEST_KAFKA;
  if (!bootstrap) throw new Error('MTRELAY_TEST_KAFKA is not set: run the tests with `npm test`, which starts the Kafka broker');
  return bootstrap;
}
