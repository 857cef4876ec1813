// How a case reads in the console: its reason, state and SLA clock, as i18n keys and values.
import type { Case } from "../api/client";
import type { MessageKey } from "../i18n/messages";

export const reasonKey = (c: Case) => `clinician.reason.${c.reason}` as MessageKey;
export const stateKey = (c: Case) => `clinician.state.${c.state}` as MessageKey;

/** Minutes until the SLA is due (negative: overdue), from `now`. */
export function minutesLeft(c: Case, now: number): number {
  return Math.floor((Date.parse(c.due_at) - now) / 60_000);
}
