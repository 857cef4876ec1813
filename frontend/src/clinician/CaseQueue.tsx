import { useEffect, useState } from "react";
import { api, unwrap, type Case } from "../api/client";
import { usePolling } from "../api/usePolling";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { minutesLeft, reasonKey, stateKey } from "./caseText";

type Which = "active" | "closed";

/** The queue: urgent first, then the oldest (the gateway's order); followed every 5 s. */
export function CaseQueue() {
  const { t } = useI18n();
  const [which, setWhich] = useState<Which>("active");
  const cases = usePolling(
    which,
    () => unwrap(api.GET("/api/cases", { params: { query: { state: which, limit: 100 } } })),
    {
      every: () => 5000,
    },
  );
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 30_000); // the SLA clocks move
    return () => clearInterval(timer);
  }, []);
  const rows = cases.data?.data ?? [];
  return (
    <section aria-label={t("clinician.queue")}>
      <div className="case-actions" role="tablist">
        {(["active", "closed"] as const).map((w) => (
          <button
            key={w}
            type="button"
            role="tab"
            aria-selected={which === w}
            className="btn btn-small"
            onClick={() => setWhich(w)}
          >
            {t(w === "active" ? "clinician.queue" : "clinician.closed")}
          </button>
        ))}
      </div>
      {cases.error && <p role="alert">{cases.error.message}</p>}
      {cases.data && rows.length === 0 && <p className="muted">{t("clinician.empty")}</p>}
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
  const left = minutesLeft(c, now);
  return (
    <li className="case-row" data-case={c.id} data-state={c.state}>
      {c.urgent && <span className="badge badge-urgent">{t("clinician.urgent")}</span>}
      <Link href={`/clinician/cases/${c.id}`}>
        {t(reasonKey(c))}
        {c.category ? ` · ${c.category}` : ""}
      </Link>
      <span className="badge">{t(stateKey(c))}</span>
      {c.claimed_by && <span className="muted">{c.claimed_by.name}</span>}
      {c.state !== "closed" &&
        (c.overdue || left < 0 ? (
          <span className="overdue">{t("clinician.overdue")}</span>
        ) : (
          <span className="muted">{t("clinician.dueIn", { m: left })}</span>
        ))}
    </li>
  );
}
