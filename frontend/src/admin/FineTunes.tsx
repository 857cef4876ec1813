import { useEffect, useId, useState } from "react";
import type { FormEvent } from "react";
import { api, ApiError, modelIds, type FileObject, type Job, unwrap } from "../api/client";
import { useI18n } from "../i18n";
import { Link, navigate } from "../router";
import { when } from "./format";

type Auto = "auto" | number;
const autoOr = (v: string, parse: (s: string) => number): Auto => (v.trim() === "" || v === "auto" ? "auto" : parse(v));

export function StatusBadge({ status }: { status: string }) {
  return <span className={`status status-${status}`}>{status}</span>;
}

export function FineTunes() {
  const { t, lang } = useI18n();
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [files, setFiles] = useState<FileObject[]>([]);
  const [models, setModels] = useState<string[]>([]);
  const [form, setForm] = useState({
    model: "",
    training_file: new URLSearchParams(window.location.search).get("file") ?? "",
    suffix: "",
    n_epochs: "",
    batch_size: "",
    lr: "",
    max_seq_length: "",
    lora: true,
  });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();

  useEffect(() => {
    unwrap(api.GET("/v1/fine_tuning/jobs", { params: { query: { limit: 50 } } }))
      .then((l) => setJobs(l.data))
      .catch(() => setJobs([]));
    unwrap(api.GET("/v1/files", { params: { query: { limit: 100 } } }))
      .then((l) => {
        setFiles(l.data);
        setForm((f) => ({ ...f, training_file: f.training_file || l.data[0]?.id || "" }));
      })
      .catch(() => undefined);
    modelIds()
      .then((ids) => {
        setModels(ids);
        setForm((f) => ({ ...f, model: f.model || ids[0] || "" }));
      })
      .catch(() => undefined);
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const job = await unwrap(
        api.POST("/v1/fine_tuning/jobs", {
          body: {
            model: form.model,
            training_file: form.training_file,
            suffix: form.suffix.trim() || null,
            max_seq_length: form.max_seq_length ? Number(form.max_seq_length) : null,
            lora: form.lora,
            method: {
              type: "supervised",
              supervised: {
                hyperparameters: {
                  n_epochs: autoOr(form.n_epochs, (s) => parseInt(s, 10)),
                  batch_size: autoOr(form.batch_size, (s) => parseInt(s, 10)),
                  learning_rate_multiplier: autoOr(form.lr, Number),
                },
              },
            },
          },
        }),
      );
      navigate(`/admin/jobs/${job.id}`);
    } catch (err) {
      setError(err instanceof ApiError ? `${err.message} (${err.code})` : String(err));
      setBusy(false);
    }
  }

  const field = (key: keyof typeof form, label: string, props: Record<string, unknown> = {}) => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input
        id={`${id}-${key}`}
        value={form[key] as string}
        onChange={(e) => setForm({ ...form, [key]: e.target.value })}
        {...props}
      />
    </div>
  );

  return (
    <>
      <section className="card">
        <h1>{t("ft.launch")}</h1>
        <form className="grid-form" onSubmit={submit}>
          <div className="field">
            <label htmlFor={`${id}-model`}>{t("ft.model")}</label>
            <select
              id={`${id}-model`}
              value={form.model}
              required
              onChange={(e) => setForm({ ...form, model: e.target.value })}
            >
              {models.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={`${id}-file`}>{t("ft.trainingFile")}</label>
            <select
              id={`${id}-file`}
              value={form.training_file}
              required
              onChange={(e) => setForm({ ...form, training_file: e.target.value })}
            >
              {files.map((f) => (
                <option key={f.id} value={f.id}>
                  {f.filename} ({f.id})
                </option>
              ))}
            </select>
          </div>
          {field("suffix", t("ft.suffix"), { pattern: "[A-Za-z0-9_-]*", maxLength: 64 })}
          {field("n_epochs", t("ft.epochs"), { placeholder: "auto", inputMode: "numeric", pattern: "auto|[0-9]*" })}
          {field("batch_size", t("ft.batch"), { placeholder: "auto", inputMode: "numeric", pattern: "auto|[0-9]*" })}
          {field("lr", t("ft.lr"), { placeholder: "auto", inputMode: "decimal", pattern: "auto|[0-9.]*" })}
          {field("max_seq_length", t("ft.maxSeq"), { placeholder: "1200", inputMode: "numeric", pattern: "[0-9]*" })}
          <div className="field checkbox">
            <input
              id={`${id}-lora`}
              type="checkbox"
              checked={form.lora}
              onChange={(e) => setForm({ ...form, lora: e.target.checked })}
            />
            <label htmlFor={`${id}-lora`}>{t("ft.lora")}</label>
          </div>
          {error && (
            <p className="form-error" role="alert">
              {error}
            </p>
          )}
          <button className="btn btn-primary" type="submit" disabled={busy || !form.model || !form.training_file}>
            {t("ft.create")}
          </button>
        </form>
      </section>
      <section className="card">
        <h2>{t("ft.jobs")}</h2>
        {jobs === null ? (
          <p className="muted">{t("common.loading")}</p>
        ) : jobs.length === 0 ? (
          <p className="muted">{t("ft.none")}</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("ft.job")}</th>
                  <th scope="col">{t("ft.status")}</th>
                  <th scope="col">{t("ft.model")}</th>
                  <th scope="col">{t("ft.fineTunedModel")}</th>
                  <th scope="col">{t("ds.created")}</th>
                </tr>
              </thead>
              <tbody>
                {jobs.map((j) => (
                  <tr key={j.id}>
                    <td>
                      <Link href={`/admin/jobs/${j.id}`}>{j.id}</Link>
                    </td>
                    <td>
                      <StatusBadge status={j.status} />
                    </td>
                    <td>{j.model}</td>
                    <td>{j.fine_tuned_model ?? ""}</td>
                    <td>{when(j.created_at, lang)}</td>
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
