import { useEffect, useState } from "react";
import { api, unwrap, type Case } from "../api/client";
import { usePolling } from "../api/usePolling";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { caseTitle, slaText, stateKey } from "./caseText";

type Tab = "active" | "mine" | "closed";
const TABS: readonly Tab[] = ["active", "mine", "closed"];
const TAB_LABEL = { active: "clinician.queue", mine: "clinician.mine", closed: "clinician.closed" } as const;

/** The queue: urgent first, then the oldest (the gateway's order); followed every 5 s.
 * "Mine" is the active cases this clinician claimed. */
export function CaseQueue() {
  const { t } = useI18n();
  const [tab, setTab] = useState<Tab>("active");
  const state = tab === "closed" ? "closed" : "active";
  const cases = usePolling(state, () => unwrap(api.GET("/api/cases", { params: { query: { state, limit: 100 } } })), {
    every: () => 5000,
  });
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 15_000); // the SLA clocks move
    return () => clearInterval(timer);
  }, []);
  const rows = (cases.data?.data ?? []).filter((c) => tab !== "mine" || c.claimed_by_me);
  return (
    <section aria-label={t("clinician.queue")}>
      <h1 className="sr-only">{t("clinician.title")}</h1>
      <div className="case-tabs" role="tablist">
        {TABS.map((w) => (
          <button
            key={w}
            type="button"
            role="tab"
            aria-selected={tab === w}
            className="btn btn-small"
            onClick={() => setTab(w)}
          >
            {t(TAB_LABEL[w])}
          </button>
        ))}
      </div>
      {cases.error && <p role="alert">{cases.error.message}</p>}
      {cases.data && rows.length === 0 && <p className="muted">{t("clinician.empty")}</p>}
      {!cases.data && !cases.error && <p className="muted">{t("common.loading")}</p>}
      <ul className="case-list">
        {rows.map((c) => (
          <CaseRow key={c.id} c={c} now={now} />
        ))}
      </ul>
    </section>
  );
}

function CaseRow({ c, now }: { c: Case; now: number }) {
  const { t } = useI18n();
  const waiting = c.state === "open" || c.state === "claimed";
  const sla = slaText(t, c, now);
  return (
    <li className={`case-row${c.urgent ? " case-urgent" : ""}`} data-case={c.id} data-state={c.state}>
      <div className="case-row-main">
        {c.urgent && <span className="badge badge-urgent">{t("clinician.urgent")}</span>}
        <Link href={`/clinician/cases/${c.id}`}>{caseTitle(t, c)}</Link>
      </div>
      <div className="case-row-meta">
        <span className={`badge badge-state badge-${c.state}`}>{t(stateKey(c))}</span>
        {c.claimed_by && <span className="muted">{c.claimed_by.name}</span>}
        {c.model_paused && <span className="muted">{t("clinician.aiPaused")}</span>}
        {waiting && (
          <span className={sla.overdue ? "sla overdue" : "sla"} title={new Date(c.due_at).toLocaleString()}>
            {sla.text}
          </span>
        )}
      </div>
    </li>
  );
}
