import { useEffect, useId, useState } from "react";
import type { FormEvent } from "react";
import { api, ApiError, modelIds, type EvalRunCreate, unwrap } from "../api/client";
import { useI18n } from "../i18n";
import { navigate } from "../router";

const DATASETS: EvalRunCreate["dataset"][] = ["cmb-clin", "cmd", "cmid"];
// The gateway's pattern for an endpoint: URL/MODEL.
const ENDPOINT = "https?://\\S+/\\S+";
const optional = (v: string) => (v.trim() ? parseInt(v, 10) : null);

export function EvalForm() {
  const { t } = useI18n();
  const [models, setModels] = useState<string[]>([]);
  const [form, setForm] = useState({
    model: "",
    dataset: "cmb-clin" as EvalRunCreate["dataset"],
    patient: "",
    judge: "",
    turns: "3",
    limit: "",
    concurrency: "",
  });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();

  useEffect(() => {
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
      const run = await unwrap(
        api.POST("/api/admin/evals", {
          body: {
            model: form.model,
            dataset: form.dataset,
            patient: form.patient.trim(),
            judge: form.judge.trim(),
            turns: parseInt(form.turns, 10) || 3,
            limit: optional(form.limit),
            concurrency: optional(form.concurrency),
          },
        }),
      );
      navigate(`/admin/evals/${run.id}`);
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
        value={form[key]}
        onChange={(e) => setForm({ ...form, [key]: e.target.value })}
        {...props}
      />
    </div>
  );
  const numeric = (min: number, max: number) => ({ type: "number", min, max, step: 1 });

  return (
    <section className="card">
      <h1>{t("eval.start")}</h1>
      <form className="grid-form" onSubmit={submit}>
        {field("model", t("eval.model"), { required: true, maxLength: 200, list: `${id}-models` })}
        <datalist id={`${id}-models`}>
          {models.map((m) => (
            <option key={m} value={m} />
          ))}
        </datalist>
        <div className="field">
          <label htmlFor={`${id}-dataset`}>{t("eval.dataset")}</label>
          <select
            id={`${id}-dataset`}
            value={form.dataset}
            onChange={(e) => setForm({ ...form, dataset: e.target.value as EvalRunCreate["dataset"] })}
          >
            {DATASETS.map((d) => (
              <option key={d}>{d}</option>
            ))}
          </select>
        </div>
        {field("patient", t("eval.patient"), {
          required: true,
          pattern: ENDPOINT,
          placeholder: t("eval.endpointHint"),
        })}
        {field("judge", t("eval.judge"), { required: true, pattern: ENDPOINT, placeholder: t("eval.endpointHint") })}
        {field("turns", t("eval.turns"), { ...numeric(1, 10), required: true })}
        {field("limit", t("eval.limit"), { ...numeric(1, 100000), placeholder: "∞" })}
        {field("concurrency", t("eval.concurrency"), { ...numeric(1, 64), placeholder: "auto" })}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button className="btn btn-primary" type="submit" disabled={busy || !form.model}>
          {t("eval.create")}
        </button>
      </form>
    </section>
  );
}
