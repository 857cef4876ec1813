import { useEffect, useMemo, useState } from "react";
import { api, errorFrom, unwrap, type JobEvent } from "../api/client";
import { readSse } from "../api/sse";
import { usePolling } from "../api/usePolling";
import { Chart } from "../components/Chart";
import { useI18n } from "../i18n";
import { num, when } from "./format";
import { StatusBadge } from "./FineTunes";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const NO_EVENTS: JobEvent[] = [];

/** Loss points from the job's metrics events, in step order. */
export function lossPoints(events: JobEvent[]): { x: number[]; y: number[] } {
  const points = events
    .filter((e) => e.type === "metrics" && e.data && typeof e.data.loss === "number")
    .map((e) => [Number(e.data!.step), Number(e.data!.loss)] as const)
    .sort((a, b) => a[0] - b[0]);
  return { x: points.map((p) => p[0]), y: points.map((p) => p[1]) };
}

export function JobPage({ jobId }: { jobId: string }) {
  const { t, lang } = useI18n();
  // The status also changes without events (queued → running): poll while not final.
  const polled = usePolling(
    jobId,
    () => unwrap(api.GET("/v1/fine_tuning/jobs/{job_id}", { params: { path: { job_id: jobId } } })),
    { every: (j) => (FINAL.has(j.status) ? null : 3000) },
  );
  const { data: job, refresh } = polled;
  const [feed, setFeed] = useState<{ jobId: string; events: JobEvent[] }>({ jobId, events: [] });
  const events = feed.jobId === jobId ? feed.events : NO_EVENTS;
  const [actionError, setActionError] = useState<string | null>(null);
  const error = actionError ?? polled.error?.message ?? null;
  const [cancelling, setCancelling] = useState(false);

  // Live events: the SSE stream sends every event from the oldest, then `end`.
  useEffect(() => {
    const controller = new AbortController();
    (async () => {
      const {
        data,
        error: err,
        response,
      } = await api.GET("/v1/fine_tuning/jobs/{job_id}/events", {
        params: { path: { job_id: jobId }, query: { stream: true } },
        parseAs: "stream",
        signal: controller.signal,
      });
      if (!response.ok || !data) throw await errorFrom(response, err ?? null);
      for await (const ev of readSse(data as ReadableStream<Uint8Array>, controller.signal)) {
        if (ev.event === "event") {
          const item = JSON.parse(ev.data) as JobEvent;
          setFeed((f) => ({ jobId, events: f.jobId === jobId ? [...f.events, item] : [item] }));
          if (item.type !== "metrics") refresh(); // a status change, probably
        } else if (ev.event === "end") {
          refresh();
        }
      }
    })().catch((e) => {
      if (!controller.signal.aborted) setActionError(String(e.message ?? e));
    });
    return () => controller.abort();
  }, [jobId, refresh]);

  const loss = useMemo(() => lossPoints(events), [events]);
  const series = useMemo(() => [{ label: "loss", values: loss.y }], [loss]);

  if (error && !job) return <p role="alert">{error}</p>;
  if (!job) return <p className="muted">{t("common.loading")}</p>;
  return (
    <>
      <section className="card">
        <h1>
          {t("ft.job")} {job.id}
        </h1>
        <dl className="stats-grid">
          <div>
            <dt>{t("ft.status")}</dt>
            <dd aria-live="polite">
              <StatusBadge status={job.status} />
            </dd>
          </div>
          <div>
            <dt>{t("ft.model")}</dt>
            <dd>{job.model}</dd>
          </div>
          <div>
            <dt>{t("ft.trainingFile")}</dt>
            <dd>{job.training_file}</dd>
          </div>
          <div>
            <dt>{t("ft.fineTunedModel")}</dt>
            <dd>{job.fine_tuned_model ?? "–"}</dd>
          </div>
          <div>
            <dt>{t("ft.trained")}</dt>
            <dd>{num(job.trained_tokens)}</dd>
          </div>
          <div>
            <dt>{t("ds.created")}</dt>
            <dd>{when(job.created_at, lang)}</dd>
          </div>
        </dl>
        <p className="muted">
          <code>{JSON.stringify(job.hyperparameters)}</code>
        </p>
        {job.error && (
          <p className="form-error" role="alert">
            {t("ft.error")}: {job.error.message} ({job.error.code})
          </p>
        )}
        {!FINAL.has(job.status) && (
          <button
            type="button"
            className="btn btn-danger"
            disabled={cancelling}
            onClick={async () => {
              setCancelling(true);
              try {
                polled.setData(
                  await unwrap(
                    api.POST("/v1/fine_tuning/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } }),
                  ),
                );
              } catch (e) {
                setActionError(String((e as Error).message));
              } finally {
                setCancelling(false);
              }
            }}
          >
            {t("ft.cancel")}
          </button>
        )}
      </section>
      <section className="card">
        <h2>{t("ft.loss")}</h2>
        {loss.x.length ? (
          <Chart title={t("ft.loss")} x={loss.x} series={series} xLabel="step" yLabel="loss" />
        ) : (
          <p className="muted">{t("ft.noMetrics")}</p>
        )}
      </section>
      <section className="card">
        <h2>{t("ft.events")}</h2>
        <ol className="events" reversed>
          {[...events].reverse().map((e) => (
            <li key={e.id} className={`level-${e.level}`}>
              <time>{when(e.created_at, lang)}</time> <span className="muted">[{e.type}]</span> {e.message}
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}
