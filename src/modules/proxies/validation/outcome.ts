/**
 * What one step found, before the pipeline times it and turns it into a ValidationStep: on
 * success the value the next step needs, on failure the hint.
 */
export type StepOutcome<T> = { ok: true; detail: string; value: T } | { ok: false; detail: string; hint: string };
