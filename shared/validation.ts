// One ajv instance for every JSON Schema the project ships, and one way to turn
// ajv's errors into a sentence that names the field.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under Node's ESM loader its default export is the plugin itself.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as
  (ajv: Ajv) => Ajv;

// verbose: errors carry their schema, so an anyOf can be explained by its description.
export const ajv = new Ajv({ allErrors: false, strict: true, useDefaults: true, verbose: true });
addFormats(ajv);

export function compileSchema<T>(schema: object): ValidateFunction<T> {
  return ajv.compile<T>(schema);
}

/** The dotted path of the field an error is about, e.g. `optionsAttributes.openTracking`. */
export function errorField(error: ErrorObject): string {
  const segments = error.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (error.keyword === 'required') segments.push(String(error.params.missingProperty));
  if (error.keyword === 'additionalProperties') segments.push(String(error.params.additionalProperty));
  return segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), '');
}

/** A short description of what is wrong, without the path. */
export function errorProblem(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'format':
      return `must be a valid ${String(error.params.format)}`;
    case 'anyOf': {
      const description = (error.parentSchema as { description?: string } | undefined)?.description;
      return description ? `must be ${description}` : 'must match one of the allowed forms';
    }
    default:
      return error.message ?? 'is invalid';
  }
}

/** The error worth reporting: a failed anyOf also lists each branch's error; the anyOf itself says more. */
export function firstError(errors: ErrorObject[] | null | undefined): ErrorObject | undefined {
  return errors?.find((e) => e.keyword === 'anyOf') ?? errors?.[0];
}

/** `field: problem` for the first error, or `problem` when the document itself is wrong. */
export function describeFirstError(errors: ErrorObject[] | null | undefined): string {
  const first = firstError(errors);
  if (!first) return 'is invalid';
  const field = errorField(first);
  return field ? `${field}: ${errorProblem(first)}` : errorProblem(first);
}
