// How a case reads in the console: its reason, state, emergency category and SLA clock.
import type { Case } from "../api/client";
import type { Translate } from "../i18n";
import type { MessageKey } from "../i18n/messages";

export const REVIEW_REASONS = [
  "factually_wrong",
  "unsafe",
  "missed_red_flag",
  "prescribes",
  "incomplete",
  "unclear",
  "other",
] as const;
export type ReviewReason = (typeof REVIEW_REASONS)[number];

export const reasonKey = (c: Case) => `clinician.reason.${c.reason}` as MessageKey;
export const stateKey = (c: Case) => `clinician.state.${c.state}` as MessageKey;
export const reviewReasonKey = (r: ReviewReason) => `clinician.reviewReason.${r}` as MessageKey;

/** The emergency category in words; an id this console does not know (a newer rules file)
 * is shown as it is. */
export function categoryText(t: Translate, category: string): string {
  const key = `clinician.category.${category}` as MessageKey;
  const text = t(key);
  return text === key ? category : text;
}

/** What the case is about: its reason, and the emergency category when rules opened it. */
export function caseTitle(t: Translate, c: Case): string {
  return c.category ? `${t(reasonKey(c))} · ${categoryText(t, c.category)}` : t(reasonKey(c));
}

/** Minutes until the SLA is due (negative: overdue), from `now`. */
export function minutesLeft(c: Case, now: number): number {
  return Math.floor((Date.parse(c.due_at) - now) / 60_000);
}

/** The SLA clock in words: time left, or how long overdue (the gateway's `overdue` wins). */
export function slaText(t: Translate, c: Case, now: number): { text: string; overdue: boolean } {
  const left = minutesLeft(c, now);
  if (c.overdue || left < 0) return { text: t("clinician.overdueBy", { m: Math.max(0, -left) }), overdue: true };
  if (left >= 60)
    return { text: t("clinician.dueInHours", { h: Math.floor(left / 60), m: left % 60 }), overdue: false };
  return { text: t("clinician.dueIn", { m: left }), overdue: false };
}
