import { useState } from "react";
import { Markdown } from "../components/Markdown";
import { useI18n } from "../i18n";
import { EmergencyNotice } from "./EmergencyNotice";
import type { ChatItem } from "./types";

async function copyText(text: string) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API unavailable (insecure origin): the old way.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}

interface Props {
  item: ChatItem;
  last: boolean;
  busy: boolean;
  onRegenerate: () => void;
}

export function MessageView({ item, last, busy, onRegenerate }: Props) {
  const { t, lang } = useI18n();
  const [copied, setCopied] = useState(false);
  if (item.role === "user") {
    return (
      <article className="msg msg-user" aria-label={t("chat.you")} data-status={item.status}>
        <div className="bubble">{item.content}</div>
      </article>
    );
  }
  if (item.role === "clinician") {
    // A person, not the model: signed, and never labelled AI-generated.
    const who = item.author ? [item.author.name, item.author.title].filter(Boolean).join(" · ") : t("chat.aClinician");
    return (
      <article className="msg msg-clinician" aria-label={t("chat.clinicianLabel")} data-status={item.status}>
        <p className="msg-author">
          <span className="badge badge-clinician">{t("chat.clinicianLabel")}</span> {who}
        </p>
        <div className="bubble">
          <Markdown text={item.content} />
        </div>
      </article>
    );
  }
  const streaming = item.status === "streaming";
  const review = item.review;
  const reviewer = review?.reviewer?.name ?? t("chat.aClinician");
  // A corrected answer is shown as the clinician wrote it; the model's stays one click away.
  const corrected = review?.verdict === "corrected" && review.corrected ? review.corrected : null;
  const shownText = corrected ?? item.content;
  return (
    <article
      className={`msg msg-assistant${review ? " msg-reviewed-answer" : ""}`}
      aria-label={t("chat.assistant")}
      data-status={item.status}
      data-ai-generated={review ? undefined : "true"}
    >
      {item.emergency && <EmergencyNotice notice={item.emergency} />}
      {review ? (
        <p className="msg-label msg-reviewed">
          <span aria-hidden="true">✓ </span>
          {t(corrected ? "chat.reviewedCorrected" : "chat.reviewed", { name: reviewer })}
        </p>
      ) : (
        <p className="msg-label">
          <span className="badge badge-ai">{t("chat.aiLabel")}</span>
        </p>
      )}
      <div className={`bubble${corrected ? " bubble-correction" : ""}`} aria-busy={streaming}>
        {shownText ? <Markdown text={shownText} /> : streaming && <p className="muted">{t("chat.thinking")}</p>}
        {streaming && item.content && <span className="cursor" aria-hidden="true" />}
      </div>
      {corrected && (
        <details className="msg-original">
          <summary>{t("chat.originalAnswer")}</summary>
          <p className="msg-label">
            <span className="badge badge-ai">{t("chat.aiLabel")}</span>
          </p>
          <Markdown text={item.content} />
        </details>
      )}
      {item.prescription && (
        <div className="prescription" role="note">
          <strong>{t("chat.prescriptionTitle")}</strong>
          <p>{lang === "en" ? item.prescription.message_en : item.prescription.message_zh}</p>
        </div>
      )}
      {item.status === "stopped" && <p className="msg-status">{t("chat.stopped")}</p>}
      {item.status === "failed" && <p className="msg-status msg-failed">{t("chat.failed")}</p>}
      {item.disclaimer && <p className="msg-disclaimer">{item.disclaimer}</p>}
      {!streaming && (
        <div className="msg-actions">
          <button
            type="button"
            className="btn btn-small"
            onClick={async () => {
              await copyText(shownText);
              setCopied(true);
              setTimeout(() => setCopied(false), 1500);
            }}
          >
            {copied ? t("chat.copied") : t("chat.copy")}
          </button>
          {last && (
            <button type="button" className="btn btn-small" disabled={busy} onClick={onRegenerate}>
              {t("chat.regenerate")}
            </button>
          )}
        </div>
      )}
    </article>
  );
}
