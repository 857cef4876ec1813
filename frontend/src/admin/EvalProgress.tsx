import type { EvalRun } from "../api/client";
import { useI18n } from "../i18n";

/** Cases ended (scored + failed) of the total, as a bar; the total is unknown until the run starts. */
export function EvalProgress({ progress }: { progress: EvalRun["progress"] }) {
  const { t } = useI18n();
  const done = progress.scored + progress.failed;
  const total = progress.total ?? "?";
  const label = t("eval.progressLabel", { done, total });
  return (
    <span className="progress-row eval-progress">
      <progress max={progress.total ?? 1} value={progress.total ? done : undefined} aria-label={label} />
      <span className="muted">
        {label}
        {progress.failed > 0 && ` · ${t("eval.failedCases", { n: progress.failed })}`}
      </span>
    </span>
  );
}
