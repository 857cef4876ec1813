import { useState } from "react";
import { api, unwrap } from "../api/client";
import { usePolling } from "../api/usePolling";
import { useI18n } from "../i18n";
import { EvalAverages } from "./EvalAverages";
import { EvalCases } from "./EvalCases";
import { EvalProgress } from "./EvalProgress";
import { ACTIVE, averages, errorText, resumable } from "./evalUtil";
import { StatusBadge } from "./FineTunes";
import { whenIso } from "./format";

/** One evaluation run: its progress (polled while it runs), averages, cases; resume. */
export function EvalRunPage({ runId }: { runId: string }) {
  const { t, lang } = useI18n();
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const path = { run_id: runId };
  const polled = usePolling(runId, () => unwrap(api.GET("/api/admin/evals/{run_id}", { params: { path } })), {
    every: (r) => (ACTIVE.has(r.status) ? 3000 : null),
  });
  const run = polled.data;
  const error = actionError ?? polled.error?.message ?? null;

  async function resume() {
    setBusy(true);
    setActionError(null);
    try {
      polled.setData(await unwrap(api.POST("/api/admin/evals/{run_id}/resume", { params: { path } })));
    } catch (e) {
      setActionError(String((e as Error).message));
    } finally {
      setBusy(false);
    }
  }

  if (error && !run) return <p role="alert">{error}</p>;
  if (!run) return <p className="muted">{t("common.loading")}</p>;
  const avg = averages(run);
  const runError = errorText(run);
  const done = run.progress.scored + run.progress.failed;
  return (
    <>
      <section className="card">
        <h1>
          {t("eval.run")} {run.id}
        </h1>
        <p className="muted">
          {run.model} · {run.dataset} · {whenIso(run.created_at, lang)}
        </p>
        <p aria-live="polite">
          <StatusBadge status={run.status} /> <EvalProgress progress={run.progress} />
        </p>
        <p className="muted">
          <code>{JSON.stringify(run.config)}</code>
        </p>
        {runError && (
          <p className="form-error" role="alert">
            {t("eval.error")}: {runError}
          </p>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <p className="actions">
          {resumable(run) && (
            <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void resume()}>
              {t("eval.resume")}
            </button>
          )}{" "}
          {run.progress.scored > 0 && (
            <a
              className="btn"
              href={`/api/admin/evals/${encodeURIComponent(run.id)}/results`}
              download={`${run.id}.jsonl`}
            >
              {t("eval.results")}
            </a>
          )}
        </p>
      </section>
      <section className="card">
        <h2>{t("eval.averages")}</h2>
        {avg ? <EvalAverages averages={avg} /> : <p className="muted">{t("eval.noScores")}</p>}
      </section>
      <section className="card">
        <h2>{t("eval.cases")}</h2>
        <EvalCases runId={run.id} version={done} />
      </section>
    </>
  );
}
