import { useCallback, useEffect, useState } from "react";
import { api, ApiError, unwrap, type ModelObject } from "../api/client";
import { useI18n } from "../i18n";

export function Models() {
  const { t } = useI18n();
  const [models, setModels] = useState<ModelObject[] | null>(null);
  const [pending, setPending] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(
    () =>
      unwrap(api.GET("/v1/models"))
        .then((l) => setModels(l.data))
        .catch(() => setModels([])),
    [],
  );
  useEffect(() => {
    void load();
  }, [load]);

  // The gateway asks the engine first; a model it does not answer for is refused with
  // what to change, and the current choice stays.
  async function serve(id: string) {
    if (!window.confirm(t("models.confirm", { model: id }))) return;
    setPending(id);
    setError(null);
    try {
      await unwrap(api.PUT("/api/admin/serving", { body: { model: id } }));
      await load();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.message} (${err.code})` : String(err));
    } finally {
      setPending(null);
    }
  }

  return (
    <section className="card">
      <h1>{t("models.title")}</h1>
      <p className="muted">{t("models.help")}</p>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {models === null ? (
        <p className="muted">{t("common.loading")}</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("models.id")}</th>
                <th scope="col">{t("models.serving")}</th>
                <th scope="col">{t("models.kind")}</th>
                <th scope="col">{t("models.parent")}</th>
                <th scope="col">
                  <span className="sr-only">{t("models.actions")}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {models.map((m) => (
                <tr key={m.id}>
                  <td>
                    <code>{m.id}</code>
                  </td>
                  <td>
                    {m.serving ? (
                      <span className="status status-succeeded">{t("models.serving")}</span>
                    ) : (
                      t("common.no")
                    )}
                  </td>
                  <td>{m.kind ?? "base"}</td>
                  <td>{m.parent ?? ""}</td>
                  <td>
                    {!m.serving && (
                      <button type="button" disabled={pending !== null} onClick={() => void serve(m.id)}>
                        {pending === m.id ? t("models.switching") : t("models.serve")}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
