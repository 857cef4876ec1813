import { useEffect, useId, useState } from "react";
import type { FormEvent } from "react";
import { api, ApiError, unwrap, type FileObject, type Problem } from "../api/client";
import { uploadDataset } from "../api/upload";
import { useI18n } from "../i18n";
import { Link, navigate } from "../router";
import { bytes, when } from "./format";
import { ProblemTable } from "./Report";

export function Datasets() {
  const { t, lang } = useI18n();
  const [files, setFiles] = useState<FileObject[] | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [failure, setFailure] = useState<{ message: string; problems: Problem[] | null } | null>(null);
  const id = useId();

  useEffect(() => {
    unwrap(api.GET("/v1/files", { params: { query: { limit: 100 } } }))
      .then((list) => setFiles(list.data))
      .catch(() => setFiles([]));
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!file) return;
    setFailure(null);
    setProgress(0);
    try {
      const stored = await uploadDataset(file, setProgress);
      navigate(`/admin/datasets/${stored.id}`);
    } catch (err) {
      setProgress(null);
      if (err instanceof ApiError) setFailure({ message: err.message, problems: err.details });
      else setFailure({ message: String(err), problems: null });
    }
  }

  return (
    <>
      <section className="card">
        <h1>{t("ds.upload")}</h1>
        <form className="upload" onSubmit={submit}>
          <label htmlFor={`${id}-file`}>{t("ds.file")}</label>
          <input
            id={`${id}-file`}
            type="file"
            accept=".jsonl,application/jsonl,application/x-ndjson"
            onChange={(e) => setFile(e.target.files?.[0] ?? null)}
          />
          <button className="btn btn-primary" type="submit" disabled={!file || (progress !== null && progress < 1)}>
            {t("ds.uploadButton")}
          </button>
        </form>
        {progress !== null && (
          <div className="progress-row">
            <progress
              max={1}
              value={progress}
              aria-label={t("ds.progress")}
              aria-valuetext={`${Math.round(progress * 100)}%`}
            />
            <span>{Math.round(progress * 100)}%</span>
          </div>
        )}
        {failure && (
          <div className="upload-failure" role="alert">
            <h2>{t("ds.invalid")}</h2>
            <p>{failure.message}</p>
            {failure.problems && <ProblemTable problems={failure.problems} />}
          </div>
        )}
      </section>
      <section className="card">
        <h2>{t("ds.list")}</h2>
        {files === null ? (
          <p className="muted">{t("common.loading")}</p>
        ) : files.length === 0 ? (
          <p className="muted">{t("ds.none")}</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("ds.filename")}</th>
                  <th scope="col">{t("ds.rows")}</th>
                  <th scope="col">{t("ds.size")}</th>
                  <th scope="col">{t("ds.created")}</th>
                </tr>
              </thead>
              <tbody>
                {files.map((f) => (
                  <tr key={f.id}>
                    <td>
                      <Link href={`/admin/datasets/${f.id}`}>{f.filename}</Link>
                    </td>
                    <td>{f.rows}</td>
                    <td>{bytes(f.bytes)}</td>
                    <td>{when(f.created_at, lang)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
