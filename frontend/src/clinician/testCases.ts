// A case as the gateway lists it, for the console's tests.
import type { Case } from "../api/client";

const MIN = 60_000;
export const aCase = (over: Partial<Case> = {}): Case => ({
  id: "c1",
  session_id: "s1",
  reason: "patient_request",
  category: null,
  urgent: false,
  state: "open",
  opened_at: new Date(Date.now() - 5 * MIN).toISOString(),
  due_at: new Date(Date.now() + 90 * MIN + 30_000).toISOString(),
  overdue: false,
  claimed_by: null,
  claimed_by_me: false,
  claimed_at: null,
  answered_at: null,
  closed_at: null,
  model_paused: false,
  ...over,
});
