import { useMemo } from "react";
import { Chart } from "../components/Chart";
import { useI18n } from "../i18n";
import { CRITERIA, type Averages } from "./evalUtil";
import { num } from "./format";

const X = CRITERIA.map((_, i) => i);
const Y_RANGE: [number, number] = [0, 5];

/** The four criterion averages and the overall one: as numbers and as a bar chart. */
export function EvalAverages({ averages }: { averages: Averages }) {
  const { t } = useI18n();
  const names = useMemo(() => CRITERIA.map((c) => t(`eval.${c}`)), [t]);
  const series = useMemo(
    () => [{ label: t("eval.averages"), values: CRITERIA.map((c) => averages.means[c]) }],
    [averages, t],
  );
  return (
    <>
      <dl className="stats-grid">
        {CRITERIA.map((c, i) => (
          <div key={c}>
            <dt>{names[i]}</dt>
            <dd data-testid={`avg-${c}`}>{num(averages.means[c], 2)}</dd>
          </div>
        ))}
        <div>
          <dt>{t("eval.overall")}</dt>
          <dd data-testid="avg-overall">{num(averages.overall, 2)}</dd>
        </div>
        <div>
          <dt>{t("eval.scored")}</dt>
          <dd>{num(averages.n)}</dd>
        </div>
      </dl>
      <Chart
        title={t("eval.averages")}
        x={X}
        series={series}
        kind="bars"
        xNames={names}
        yRange={Y_RANGE}
        height={200}
      />
    </>
  );
}
