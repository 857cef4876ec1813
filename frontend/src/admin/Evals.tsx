import { api, unwrap } from "../api/client";
import { usePolling } from "../api/usePolling";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { EvalForm } from "./EvalForm";
import { EvalProgress } from "./EvalProgress";
import { ACTIVE, averages } from "./evalUtil";
import { StatusBadge } from "./FineTunes";
import { num, whenIso } from "./format";

export function Evals() {
  const { t, lang } = useI18n();
  // Runs move on their own (the worker): follow them while any is queued or running.
  const { data, error } = usePolling(
    "evals",
    () => unwrap(api.GET("/api/admin/evals", { params: { query: { limit: 50 } } })),
    { every: (l) => (l.data.some((r) => ACTIVE.has(r.status)) ? 5000 : null) },
  );
  const runs = data ? data.data : error ? [] : null;

  return (
    <>
      <EvalForm />
      <section className="card">
        <h2>{t("eval.runs")}</h2>
        {runs === null ? (
          <p className="muted">{t("common.loading")}</p>
        ) : runs.length === 0 ? (
          <p className="muted">{t("eval.none")}</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("eval.run")}</th>
                  <th scope="col">{t("eval.model")}</th>
                  <th scope="col">{t("eval.dataset")}</th>
                  <th scope="col">{t("eval.status")}</th>
                  <th scope="col">{t("eval.progress")}</th>
                  <th scope="col">{t("eval.overall")}</th>
                  <th scope="col">{t("eval.created")}</th>
                </tr>
              </thead>
              <tbody>
                {runs.map((r) => (
                  <tr key={r.id}>
                    <td>
                      <Link href={`/admin/evals/${r.id}`}>{r.id}</Link>
                    </td>
                    <td>{r.model}</td>
                    <td>{r.dataset}</td>
                    <td>
                      <StatusBadge status={r.status} />
                    </td>
                    <td>
                      <EvalProgress progress={r.progress} />
                    </td>
                    <td className="num">{num(averages(r)?.overall, 2)}</td>
                    <td>{whenIso(r.created_at, lang)}</td>
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
