import { useEffect, useState } from "react";
import { api, unwrap } from "../api/client";
import { useI18n } from "../i18n";

interface ModelEntry {
  id: string;
  serving?: boolean;
  kind?: string;
  parent?: string;
}

export function Models() {
  const { t } = useI18n();
  const [models, setModels] = useState<ModelEntry[] | null>(null);
  useEffect(() => {
    unwrap(api.GET("/v1/models"))
      .then((l) => setModels((l as { data?: ModelEntry[] }).data ?? []))
      .catch(() => setModels([]));
  }, []);
  return (
    <section className="card">
      <h1>{t("models.title")}</h1>
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
              </tr>
            </thead>
            <tbody>
              {models.map((m) => (
                <tr key={m.id}>
                  <td>
                    <code>{m.id}</code>
                  </td>
                  <td>{m.serving ? <span className="status status-succeeded">{t("models.serving")}</span> : t("common.no")}</td>
                  <td>{m.kind ?? (m.serving ? "base" : "")}</td>
                  <td>{m.parent ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
