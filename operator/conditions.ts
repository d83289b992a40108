// Status conditions shaped like metav1.Condition. lastTransitionTime moves only when the
// status changes, so `kubectl describe` shows since when a resource has been (not) Ready.
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

export function setConditions(previous: Condition[] | undefined, next: ConditionInput[], generation: number | undefined, now = new Date()): Condition[] {
  return next.map((condition) => {
    const before = previous?.find((c) => c.type === condition.type);
    const lastTransitionTime = before && before.status === condition.status ? before.lastTransitionTime : now.toISOString();
    return { ...condition, ...(generation !== undefined ? { observedGeneration: generation } : {}), lastTransitionTime };
  });
}

export function conditionTrue(conditions: Condition[] | undefined, type: string): boolean {
  return conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
}

/** Whether two condition lists say the same (ignoring times), so an unchanged status is not written again. */
export function sameConditions(a: Condition[] | undefined, b: Condition[]): boolean {
  const strip = (list: Condition[] | undefined) => JSON.stringify((list ?? []).map(({ lastTransitionTime: _t, ...rest }) => rest));
  return strip(a) === strip(b);
}
