import { useI18n } from "../i18n";
import type { Emergency } from "./types";

/** Shown above the answer, whatever the model says, when the gateway attaches a notice. */
export function EmergencyNotice({ notice }: { notice: Emergency }) {
  const { lang, t } = useI18n();
  return (
    <div className="emergency" role="alert">
      <strong className="emergency-title">
        <span aria-hidden="true">⚠ </span>
        {t("chat.emergencyTitle")}
      </strong>
      <p>{lang === "en" ? notice.message_en : notice.message_zh}</p>
    </div>
  );
}
