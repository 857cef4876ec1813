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
  const { t } = useI18n();
  const [copied, setCopied] = useState(false);
  if (item.role === "user") {
    return (
      <article className="msg msg-user" aria-label={t("chat.you")} data-status={item.status}>
        <div className="bubble">{item.content}</div>
      </article>
    );
  }
  const streaming = item.status === "streaming";
  return (
    <article className="msg msg-assistant" aria-label={t("chat.assistant")} data-status={item.status}>
      {item.emergency && <EmergencyNotice notice={item.emergency} />}
      <div className="bubble" aria-busy={streaming}>
        {item.content ? <Markdown text={item.content} /> : streaming && <p className="muted">{t("chat.thinking")}</p>}
        {streaming && item.content && <span className="cursor" aria-hidden="true" />}
      </div>
      {item.status === "stopped" && <p className="msg-status">{t("chat.stopped")}</p>}
      {item.status === "failed" && <p className="msg-status msg-failed">{t("chat.failed")}</p>}
      {item.disclaimer && <p className="msg-disclaimer">{item.disclaimer}</p>}
      {!streaming && (
        <div className="msg-actions">
          <button
            type="button"
            className="btn btn-small"
            onClick={async () => {
              await copyText(item.content);
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
