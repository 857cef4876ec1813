// The validation report of a dataset (ValidationReport.to_dict() in
// services/core/chatformat/validate.py). The gateway types it as a free-form object, so its
// shape is declared here, read-only, with every field optional where the worker may omit it.
import { useMemo, useState } from "react";
import type { Problem } from "../api/client";
import { Chart } from "../components/Chart";
import { useI18n } from "../i18n";
import { num } from "./format";

export interface Distribution {
  count: number;
  mean?: number;
  min?: number;
  p50?: number;
  p90?: number;
  p95?: number;
  p99?: number;
  max?: number;
  histogram?: { edges: number[]; counts: number[] };
}

export interface ValidationReport {
  ok?: boolean;
  rows: number;
  valid_rows?: number;
  turns?: number;
  errors: number;
  warnings: number;
  counts_by_code: Record<string, number>;
  problems: Problem[];
  problems_omitted?: number;
  max_seq_length?: number | null;
  tokenizer?: string | null;
  tokens?: {
    user: Distribution;
    assistant: Distribution;
    row: Distribution;
    truncated_rows: number;
    trained_tokens: number;
    trained_tokens_lost: number;
  } | null;
}

export function ProblemTable({ problems }: { problems: Problem[] }) {
  const { t } = useI18n();
  return (
    <div className="table-wrap">
      <table className="problems">
        <thead>
          <tr>
            <th scope="col">{t("ds.line")}</th>
            <th scope="col">{t("ds.code")}</th>
            <th scope="col">{t("ds.severity")}</th>
            <th scope="col">{t("ds.message")}</th>
          </tr>
        </thead>
        <tbody>
          {problems.map((p, i) => (
            <tr key={i} className={`sev-${p.severity}`}>
              <td className="num" data-testid="problem-line">
                {p.line}
              </td>
              <td>
                <code>{p.code}</code>
              </td>
              <td>{p.severity}</td>
              <td>{p.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const STATS = ["count", "mean", "min", "p50", "p90", "p95", "p99", "max"] as const;

export function Report({ report }: { report: ValidationReport }) {
  const { t } = useI18n();
  const tokens = report.tokens;
  const [which, setWhich] = useState<"row" | "user" | "assistant">("row");
  const hist = tokens?.[which]?.histogram;
  const chart = useMemo(
    () =>
      hist && hist.counts.length
        ? { x: hist.edges.slice(0, hist.counts.length), series: [{ label: which, values: hist.counts }] }
        : null,
    [hist, which],
  );

  return (
    <div className="report">
      <dl className="stats-grid">
        <div>
          <dt>{t("ds.rows")}</dt>
          <dd>{num(report.rows)}</dd>
        </div>
        <div>
          <dt>{t("ds.errors")}</dt>
          <dd className={report.errors ? "bad" : undefined}>{num(report.errors)}</dd>
        </div>
        <div>
          <dt>{t("ds.warnings")}</dt>
          <dd>{num(report.warnings)}</dd>
        </div>
        {tokens && (
          <>
            <div>
              <dt>{t("ds.truncated")}</dt>
              <dd data-testid="truncated-rows" className={tokens.truncated_rows ? "warn" : undefined}>
                {num(tokens.truncated_rows)}
              </dd>
            </div>
            <div>
              <dt>{t("ds.trainedTokens")}</dt>
              <dd>{num(tokens.trained_tokens)}</dd>
            </div>
            <div>
              <dt>{t("ds.tokensLost")}</dt>
              <dd>{num(tokens.trained_tokens_lost)}</dd>
            </div>
          </>
        )}
      </dl>
      {Object.keys(report.counts_by_code ?? {}).length > 0 && (
        <>
          <h3>{t("ds.countsByCode")}</h3>
          <ul className="codes">
            {Object.entries(report.counts_by_code).map(([code, n]) => (
              <li key={code}>
                <code>{code}</code>: {n}
              </li>
            ))}
          </ul>
        </>
      )}
      {report.problems?.length ? <ProblemTable problems={report.problems} /> : <p>{t("ds.noProblems")}</p>}
      {tokens && (
        <>
          <h3>{t("ds.tokens")}</h3>
          <div className="table-wrap">
            <table className="token-stats">
              <thead>
                <tr>
                  <th scope="col" />
                  {STATS.map((s) => (
                    <th scope="col" key={s}>
                      {s}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {(["user", "assistant", "row"] as const).map((k) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    {STATS.map((s) => (
                      <td className="num" key={s}>
                        {num(tokens[k]?.[s] as number | undefined, 1)}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h3 id="histogram-title">{t("ds.histogram")}</h3>
          <div className="segmented" role="group" aria-labelledby="histogram-title">
            {(["row", "user", "assistant"] as const).map((k) => (
              <button
                key={k}
                type="button"
                className="btn btn-small"
                aria-pressed={which === k}
                onClick={() => setWhich(k)}
              >
                {k}
              </button>
            ))}
          </div>
          {chart && (
            <Chart
              title={`${t("ds.histogram")} (${which})`}
              kind="bars"
              x={chart.x}
              series={chart.series}
              xLabel="tokens"
              yLabel={t("ds.rows")}
            />
          )}
        </>
      )}
    </div>
  );
}
