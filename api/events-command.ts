// `mtrelay events trace <transmission_id>`: one transmission's timeline per recipient, asked of
// the API (a cluster's `mtrelay api` or standalone's --api-port) with an API key that has
// events/read. The key comes from MTRELAY_API_KEY (or --api-key, which other users of the
// machine can see in the process list).
import { Command } from 'commander';
import { option } from '../shared/cli-options.ts';
import { traceText, type Trace } from './trace.ts';

interface TraceFlags {
  apiUrl: string;
  apiKey?: string;
  json?: boolean;
}

/** Asks the API for a trace; throws with the API's own message when it refuses. */
export async function fetchTrace(apiUrl: string, apiKey: string, transmissionId: string): Promise<Trace> {
  const url = new URL(`api/v1/events/trace/${encodeURIComponent(transmissionId)}`, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: apiKey }, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new Error(`cannot reach the API at ${url.origin}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
  }
  const body = await response.json().catch(() => ({})) as { results?: Trace; errors?: { message: string }[] };
  if (!response.ok || !body.results) throw new Error(`the API answered ${response.status}: ${body.errors?.[0]?.message ?? 'no trace in the answer'}`);
  return body.results;
}

export function eventsCommand(): Command {
  const trace = new Command('trace')
    .description('show one transmission\'s events as a timeline per recipient (injection, delays, delivery or bounce, opens, clicks, complaints)')
    .argument('<transmission_id>', 'the id in the 250 reply to DATA (and in the X-MT-Transmission field)')
    .addOption(option('--api-url <url>', 'the API (standalone: http://127.0.0.1:8081; a cluster: the api Service or its Ingress)').default('http://127.0.0.1:8081'))
    .addOption(option('--api-key <key>', 'an API key with events/read (better: the MTRELAY_API_KEY environment variable)'))
    .option('--json', 'print the trace as JSON')
    .action(async (id: string, flags: TraceFlags) => {
      if (!flags.apiKey) throw new Error('no API key: set MTRELAY_API_KEY to a key with events/read');
      const result = await fetchTrace(flags.apiUrl, flags.apiKey, id);
      process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : traceText(result));
      // Nothing found is an answer a script should notice.
      if (!result.recipients.length) process.exitCode = 1;
    });
  return new Command('events').description('look at what happened to mail: message traces').addCommand(trace);
}
