import { useCallback, useEffect, useState } from "react";
import { api, unwrap, type EvalCase } from "../api/client";
import { useI18n } from "../i18n";
import { CRITERIA } from "./evalUtil";
import { num, whenIso } from "./format";
import { StatusBadge } from "./FineTunes";

const PAGE = 50;

/** The run's ended cases (oldest first), a page at a time; `version` reloads them. */
export function EvalCases({ runId, version }: { runId: string; version: number }) {
  const { t, lang } = useI18n();
  const [cases, setCases] = useState<EvalCase[] | null>(null);
  const [more, setMore] = useState(false);

  const load = useCallback(
    (after?: number) =>
      unwrap(
        api.GET("/api/admin/evals/{run_id}/cases", {
          params: { path: { run_id: runId }, query: { limit: PAGE, after } },
        }),
      ).then((page) => {
        setCases((cs) => (after === undefined ? page.data : [...(cs ?? []), ...page.data]));
        setMore(page.has_more);
      }),
    [runId],
  );

  useEffect(() => {
    // `version` (the run's progress) changes as cases end: read them again.
    load().catch(() => setCases((cs) => cs ?? []));
  }, [load, version]);

  if (cases === null) return <p className="muted">{t("common.loading")}</p>;
  if (cases.length === 0) return <p className="muted">{t("eval.noCases")}</p>;
  return (
    <>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{t("eval.case")}</th>
              <th scope="col">{t("eval.status")}</th>
              {CRITERIA.map((c) => (
                <th scope="col" key={c}>
                  {t(`eval.${c}`)}
                </th>
              ))}
              <th scope="col">{t("eval.attempts")}</th>
              <th scope="col">{t("eval.dialogue")}</th>
              <th scope="col">{t("eval.updated")}</th>
            </tr>
          </thead>
          <tbody>
            {cases.map((c) => (
              <tr key={c.id}>
                <td>
                  <code>{c.case_id}</code>
                </td>
                <td>
                  <StatusBadge status={c.status} />
                  {c.error && <div className="form-error">{c.error}</div>}
                </td>
                {CRITERIA.map((k) => (
                  <td className="num" key={k}>
                    {num(c.scores?.[k] as number | undefined, 1)}
                  </td>
                ))}
                <td className="num">{c.attempts}</td>
                <td>
                  <CaseDialogue c={c} />
                </td>
                <td>{whenIso(c.updated_at, lang)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {more && (
        <button type="button" className="btn" onClick={() => void load(cases[cases.length - 1].id)}>
          {t("common.more")}
        </button>
      )}
    </>
  );
}

function CaseDialogue({ c }: { c: EvalCase }) {
  const { t } = useI18n();
  if (!c.conversation?.length && !c.judge_reply) return null;
  return (
    <details>
      <summary>{t("eval.dialogue")}</summary>
      <ol className="eval-dialogue">
        {(c.conversation ?? []).map((m, i) => (
          <li key={i}>
            <strong>{String(m.role ?? "")}</strong>: {String(m.content ?? "")}
          </li>
        ))}
      </ol>
      {c.judge_reply && <pre className="eval-judge">{c.judge_reply}</pre>}
    </details>
  );
}
