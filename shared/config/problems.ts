// What is wrong with resources, as values: the resource a problem is about (so the operator
// can put a Warning Event on it), the file it came from (folder sources), and a sentence.
import { MtrelayError } from '../errors.ts';

export type ResourceKind = 'SendingDomain' | 'ApiKey' | 'Webhook' | 'Secret' | 'AccountSettings';

export interface ConfigProblem {
  resource?: { kind: ResourceKind | string; namespace: string; name: string };
  /** The manifest file, for folder sources. */
  source?: string;
  /** What is wrong, without the resource or file. */
  message: string;
}

/** `file.yaml: ApiKey acme/app: Secret acme/app-key not found` */
export function describeProblem(problem: ConfigProblem): string {
  const { resource, source, message } = problem;
  return [source, resource && `${resource.kind} ${resource.namespace}/${resource.name}`, message].filter(Boolean).join(': ');
}

/** Resources that do not compile; `problems` lists every one found, not only the first. */
export class ConfigCompileError extends MtrelayError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const lines = problems.map(describeProblem);
    super('MTR_ERR_CONFIG', lines.length === 1 ? lines[0]! : `${lines.length} problems:\n  ${lines.join('\n  ')}`);
    this.problems = problems;
  }
}
