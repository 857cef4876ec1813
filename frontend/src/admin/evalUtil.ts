// What the evaluation pages read out of a run: the API gives `summary` and `error` as free
// JSON objects, so the few fields shown are picked out here, typed.
import type { EvalRun } from "../api/client";

/** DISC-MedLLM's four criteria, in its published order (the summary's keys). */
export const CRITERIA = ["Proactivity", "Accuracy", "Helpfulness", "Linguistic Quality"] as const;
export type Criterion = (typeof CRITERIA)[number];

export const ACTIVE = new Set(["queued", "running"]);

export interface Averages {
  n: number;
  means: Record<Criterion, number>;
  overall: number;
}

export function averages(run: EvalRun): Averages | null {
  const s = run.summary;
  if (!s || typeof s.overall !== "number") return null;
  const means = Object.fromEntries(CRITERIA.map((c) => [c, Number(s[c])])) as Record<Criterion, number>;
  return { n: Number(s.n ?? 0), means, overall: s.overall };
}

/** Whether the resume route would take the run: it has ended, and not every case is scored. */
export function resumable(run: EvalRun): boolean {
  if (ACTIVE.has(run.status)) return false;
  const { total, scored } = run.progress;
  return run.status !== "succeeded" || total === null || scored < total;
}

export function errorText(run: EvalRun): string | null {
  const e = run.error;
  if (!e) return null;
  return `${String(e.message ?? "")} (${String(e.code ?? "")})`;
}
