import { useCallback, useEffect, useId, useState } from "react";
import type { FormEvent } from "react";
import { api, unwrap, type AuditEntry } from "../api/client";
import { useI18n } from "../i18n";
import { short, whenIso } from "./format";

const PAGE = 100;

export interface AuditFilters {
  action: string;
  actor: string;
  subject: string;
  since: string; // a datetime-local value, in the reader's time zone
}
const NONE: AuditFilters = { action: "", actor: "", subject: "", since: "" };

/** The query for one page: the filters that are set, and the cursor (the last id shown). */
export function auditQuery(f: AuditFilters, before?: number) {
  const since = f.since ? new Date(f.since) : null;
  return {
    limit: PAGE,
    ...(before !== undefined && { before }),
    ...(f.action.trim() && { action: f.action.trim() }),
    ...(f.actor.trim() && { actor: f.actor.trim() }),
    ...(f.subject.trim() && { subject: f.subject.trim() }),
    ...(since && !Number.isNaN(since.getTime()) && { since: since.toISOString() }),
  };
}

/** The audit log, newest first: who did what, when, from where. It holds no conversation content. */
export function Audit() {
  const { t } = useI18n();
  const [draft, setDraft] = useState<AuditFilters>(NONE);
  const [filters, setFilters] = useState<AuditFilters>(NONE);
  const [rows, setRows] = useState<AuditEntry[] | null>(null);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = useId();

  const load = useCallback(
    (before?: number) =>
      unwrap(api.GET("/api/admin/audit", { params: { query: auditQuery(filters, before) } })).then(
        (page) => {
          setError(null);
          setRows((rs) => (before === undefined ? page.data : [...(rs ?? []), ...page.data]));
          setMore(page.has_more);
        },
        (e) => {
          setError(String((e as Error).message ?? e));
          setRows((rs) => rs ?? []);
        },
      ),
    [filters],
  );

  useEffect(() => {
    void load();
  }, [load]);

  function apply(e: FormEvent) {
    e.preventDefault();
    setFilters({ ...draft });
  }

  const field = (key: keyof AuditFilters, label: string, props: Record<string, unknown> = {}) => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input
        id={`${id}-${key}`}
        value={draft[key]}
        onChange={(e) => setDraft({ ...draft, [key]: e.target.value })}
        {...props}
      />
    </div>
  );

  return (
    <section className="card">
      <h1>{t("audit.title")}</h1>
      <p className="muted">{t("audit.note")}</p>
      <form className="grid-form" onSubmit={apply} role="search">
        {field("action", t("audit.action"), { placeholder: "file." })}
        {field("actor", t("audit.actor"), { spellCheck: false })}
        {field("subject", t("audit.subject"), { spellCheck: false })}
        {field("since", t("audit.since"), { type: "datetime-local" })}
        <div className="actions">
          <button className="btn btn-primary" type="submit">
            {t("audit.apply")}
          </button>{" "}
          <button
            className="btn"
            type="button"
            onClick={() => {
              setDraft(NONE);
              setFilters(NONE);
            }}
          >
            {t("audit.clear")}
          </button>
        </div>
      </form>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {rows === null ? (
        <p className="muted">{t("common.loading")}</p>
      ) : rows.length === 0 ? (
        <p className="muted">{t("audit.none")}</p>
      ) : (
        <AuditTable rows={rows} />
      )}
      {more && rows && rows.length > 0 && (
        <button type="button" className="btn" onClick={() => void load(rows[rows.length - 1].id)}>
          {t("common.more")}
        </button>
      )}
    </section>
  );
}

function AuditTable({ rows }: { rows: AuditEntry[] }) {
  const { t, lang } = useI18n();
  return (
    <div className="table-wrap">
      <table className="audit">
        <thead>
          <tr>
            <th scope="col">{t("audit.time")}</th>
            <th scope="col">{t("audit.actionCol")}</th>
            <th scope="col">{t("audit.actorCol")}</th>
            <th scope="col">{t("audit.via")}</th>
            <th scope="col">{t("audit.target")}</th>
            <th scope="col">{t("audit.subjectCol")}</th>
            <th scope="col">{t("audit.ip")}</th>
            <th scope="col">{t("audit.requestId")}</th>
            <th scope="col">{t("audit.details")}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id}>
              <td className="nowrap">{whenIso(r.at, lang)}</td>
              <td className="nowrap">
                <code>{r.action}</code>
              </td>
              <td className="nowrap" title={r.actor_id ?? undefined}>
                {r.actor_role ?? ""} <code>{short(r.actor_id)}</code>
              </td>
              <td>{r.via}</td>
              <td className="ids">{r.target_type ? `${r.target_type}:${r.target_id ?? ""}` : (r.target_id ?? "")}</td>
              <td title={r.subject_id ?? undefined}>
                <code>{short(r.subject_id)}</code>
              </td>
              <td className="nowrap">{r.ip ?? ""}</td>
              <td className="ids">
                <code>{r.request_id ?? ""}</code>
              </td>
              <td>{r.details && <code className="audit-details">{JSON.stringify(r.details)}</code>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
