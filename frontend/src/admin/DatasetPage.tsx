import { useEffect, useState } from "react";
import { api, unwrap, type FileObject } from "../api/client";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { bytes, when } from "./format";
import { Report, type ValidationReport } from "./Report";

/** One dataset and its report; the token-level part is polled until the worker has it. */
export function DatasetPage({ fileId }: { fileId: string }) {
  const { t, lang } = useI18n();
  const [file, setFile] = useState<FileObject | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let tries = 0;
    const poll = async () => {
      try {
        const f = await unwrap(api.GET("/v1/files/{file_id}", { params: { path: { file_id: fileId } } }));
        if (!live) return;
        setFile(f);
        // The worker usually needs seconds; stop asking after ~10 minutes (a reload asks again).
        if (!f.report && ++tries < 400) timer = setTimeout(poll, 1500);
      } catch (e) {
        if (live) setError(String((e as Error).message ?? e));
      }
    };
    void poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [fileId]);

  if (error) return <p role="alert">{error}</p>;
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
