import { useState } from "react";
import { api, unwrap, type FileObject } from "../api/client";
import { usePolling } from "../api/usePolling";
import { Chart } from "../components/Chart";
import { useI18n } from "../i18n";
import { Link } from "../router";

/** Clinicians' reviews of AI answers, per model: how many were reviewed, the share corrected
 * (a chart), the top reasons; and the corrections as a training dataset. */
export function Reviews() {
  const { t } = useI18n();
  const stats = usePolling("review-stats", () => unwrap(api.GET("/api/admin/reviews/stats")), { every: () => 30_000 });
  const [made, setMade] = useState<FileObject | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const rows = stats.data?.data ?? [];
  const name = (m: string | null) => m ?? "—";

  async function build() {
    setProblem(null);
    try {
      setMade(
        await unwrap(api.POST("/api/admin/datasets/from-reviews", { body: { redact: true, include_correct: true } })),
      );
    } catch (e) {
      setProblem((e as Error).message);
    }
  }

  return (
    <section>
      <h1>{t("admin.reviews")}</h1>
      {stats.error && <p role="alert">{stats.error.message}</p>}
      {stats.data && rows.length === 0 && <p className="muted">{t("admin.reviewsEmpty")}</p>}
      {rows.length > 0 && (
        <>
          <Chart
            title={t("admin.correctedShare")}
            kind="bars"
            x={rows.map((_, i) => i)}
            xNames={rows.map((r) => name(r.model))}
            series={[{ label: t("admin.correctedShare"), values: rows.map((r) => r.corrected_share) }]}
            yRange={[0, 1]}
          />
          <table>
            <thead>
              <tr>
                <th>{t("admin.model")}</th>
                <th>{t("admin.reviewed")}</th>
                <th>{t("admin.correctedShare")}</th>
                <th>{t("admin.topReasons")}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={name(r.model)}>
                  <td>{name(r.model)}</td>
                  <td>{r.reviewed}</td>
                  <td>{(r.corrected_share * 100).toFixed(0)}%</td>
                  <td>{r.top_reasons.map((x) => `${x.reason} (${x.count})`).join(", ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <p className="hint">{t("admin.fromReviewsHint")}</p>
      <button type="button" className="btn btn-primary" onClick={() => void build()}>
        {t("admin.fromReviews")}
      </button>
      {problem && <p role="alert">{problem}</p>}
      {made && (
        <p>
          <Link href={`/admin/datasets/${made.id}`}>{made.filename}</Link>
        </p>
      )}
    </section>
  );
}
