import { api, unwrap } from "../api/client";
import { usePolling } from "../api/usePolling";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { bytes, when } from "./format";
import { Report, type ValidationReport } from "./Report";

/** One dataset and its report; the token-level part is polled until the worker has it. */
export function DatasetPage({ fileId }: { fileId: string }) {
  const { t, lang } = useI18n();
  const { data: file, error } = usePolling(
    fileId,
    () => unwrap(api.GET("/v1/files/{file_id}", { params: { path: { file_id: fileId } } })),
    // The worker usually needs seconds; stop asking after ~10 minutes (a reload asks again).
    { every: (f) => (f.report ? null : 1500), maxLoads: 400 },
  );

  if (error && !file) return <p role="alert">{error.message}</p>;
  if (!file) return <p className="muted">{t("common.loading")}</p>;
  return (
    <section className="card">
      <h1>{file.filename}</h1>
      <p className="muted">
        {file.id} · {file.rows} {t("ds.rows")} · {bytes(file.bytes)} · {when(file.created_at, lang)}
      </p>
      <h2>{t("ds.report")}</h2>
      {file.report ? (
        <Report report={file.report as unknown as ValidationReport} />
      ) : (
        <p className="muted" role="status">
          {t("ds.reportPending")}
        </p>
      )}
      <p>
        <Link className="btn btn-primary" href={`/admin/jobs?file=${encodeURIComponent(file.id)}`}>
          {t("ds.launch")}
        </Link>
      </p>
    </section>
  );
}
