import { useCallback, useEffect, useRef, useState } from "react";
import type { FormEvent, KeyboardEvent } from "react";
import { AuthForm } from "../auth/AuthForm";
import { useAuth } from "../auth/AuthContext";
import { LangSwitch, useI18n } from "../i18n";
import { Link, navigate } from "../router";
import { MessageView } from "./MessageView";
import { SessionList } from "./SessionList";
import type { Handoff } from "../api/client";
import type { ChatError } from "./types";
import { useChat } from "./useChat";

export function ChatPage({ sessionId }: { sessionId: string | null }) {
  const { t, lang } = useI18n();
  const { user, signOut } = useAuth();
  const [version, setVersion] = useState(0);
  // The menu (narrow screens) is open for the session it was opened on: opening another closes it.
  const [menuFor, setMenuFor] = useState<string | null | undefined>(undefined);
  const menuOpen = menuFor === sessionId;
  const [signUpOpen, setSignUpOpen] = useState(false);
  const [draft, setDraft] = useState("");
  const bottom = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const refresh = useCallback(() => setVersion((v) => v + 1), []);
  const onCreated = useCallback(
    (id: string) => {
      navigate(`/chat/${id}`, { replace: true });
      refresh();
    },
    [refresh],
  );
  const chat = useChat({ sessionId, lang, onCreated, onChanged: refresh });
  const busy = chat.phase !== "idle" && chat.phase !== "loading";
  const streaming = chat.phase === "streaming" || chat.phase === "stopping";

  useEffect(() => {
    bottom.current?.scrollIntoView?.({ block: "end" });
  }, [chat.items]);

  async function submit(e?: FormEvent) {
    e?.preventDefault();
    if (await chat.send(draft)) setDraft("");
    input.current?.focus();
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    }
  }

  const handingOff = chat.handoff !== null && chat.handoff.state !== "closed";
  const asking = chat.asking;
  const lastAssistant = chat.items.length > 0 && chat.items[chat.items.length - 1].role === "assistant";

  return (
    <div className={`chat-layout${menuOpen ? " menu-open" : ""}`}>
      <header className="topbar">
        <button
          type="button"
          className="btn btn-icon menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="sidebar"
          aria-label={t("chat.menu")}
          onClick={() => setMenuFor(menuOpen ? undefined : sessionId)}
        >
          ☰
        </button>
        <span className="brand">{t("app.name")}</span>
        <span className="spacer" />
        {user?.is_guest && (
          <>
            <span className="badge">{t("auth.guestBadge")}</span>
            <button type="button" className="btn btn-ghost" onClick={() => setSignUpOpen(true)}>
              {t("auth.keepSessions")}
            </button>
          </>
        )}
        {user?.role === "admin" && (
          <Link className="btn btn-ghost" href="/admin/datasets">
            {t("chat.admin")}
          </Link>
        )}
        <LangSwitch />
        <button
          type="button"
          className="btn btn-ghost"
          onClick={async () => {
            await signOut();
            navigate("/");
          }}
        >
          {t("auth.signOut")}
        </button>
      </header>
      <aside id="sidebar" className="sidebar">
        <SessionList
          activeId={sessionId}
          version={version}
          onNew={() => {
            navigate("/chat");
            setMenuFor(undefined);
            input.current?.focus();
          }}
          onDeleted={(id) => id === sessionId && navigate("/chat", { replace: true })}
          onChanged={refresh}
        />
      </aside>
      <main className="chat-main">
        {handingOff && <HandoffBanner handoff={chat.handoff!} onEnd={() => void chat.endHandoff()} />}
        <div className="messages" aria-live="polite" aria-busy={streaming}>
          {chat.phase === "loading" && <p className="muted center">{t("common.loading")}</p>}
          {chat.phase !== "loading" && chat.items.length === 0 && !chat.error && (
            <div className="empty">
              <p>{t("chat.empty")}</p>
              <p className="muted">{t("welcome.disclaimer")}</p>
            </div>
          )}
          {chat.items.map((item, i) => (
            <MessageView
              key={item.key}
              item={item}
              last={i === chat.items.length - 1 && lastAssistant}
              busy={busy}
              onRegenerate={() => void chat.regenerate()}
            />
          ))}
          {chat.error && (
            <ErrorBanner
              error={chat.error}
              busy={busy}
              onRetry={() => void chat.retry()}
              onNew={() => navigate("/chat")}
            />
          )}
          <div ref={bottom} />
        </div>
        <form className="composer" onSubmit={submit}>
          <label htmlFor="composer-input" className="sr-only">
            {t("chat.inputLabel")}
          </label>
          <textarea
            id="composer-input"
            ref={input}
            rows={2}
            placeholder={t("chat.placeholder")}
            value={draft}
            maxLength={20000}
            disabled={chat.gone}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKeyDown}
          />
          {streaming ? (
            <button
              type="button"
              className="btn btn-danger"
              onClick={() => void chat.stop()}
              disabled={chat.phase === "stopping"}
            >
              {t("chat.stop")}
            </button>
          ) : (
            <button type="submit" className="btn btn-primary" disabled={busy || !draft.trim() || chat.gone}>
              {t("chat.send")}
            </button>
          )}
        </form>
        <p className="footer-disclaimer">
          {t("chat.footer")}{" "}
          {!handingOff && (
            <button
              type="button"
              className="btn btn-small btn-clinician"
              onClick={() => void chat.askClinician()}
              disabled={chat.gone || asking}
            >
              {t("chat.askClinician")}
            </button>
          )}
        </p>
      </main>
      {signUpOpen && (
        <div className="dialog-backdrop" onClick={() => setSignUpOpen(false)}>
          <div
            className="dialog"
            role="dialog"
            aria-modal="true"
            aria-label={t("auth.signUp")}
            onClick={(e) => e.stopPropagation()}
            onKeyDown={(e) => e.key === "Escape" && setSignUpOpen(false)}
          >
            <p className="hint">{t("auth.keepHint")}</p>
            <AuthForm
              initial="signUp"
              onDone={() => {
                setSignUpOpen(false);
                refresh();
              }}
            />
            <button type="button" className="btn btn-link" onClick={() => setSignUpOpen(false)}>
              {t("auth.close")}
            </button>
          </div>
        </div>
      )}
    </div>
  );
}

/** A person is involved: what the gateway says about it (urgent: the crisis lines), who took
 * it, whether the model is paused; the patient may end it. */
export function HandoffBanner({ handoff, onEnd }: { handoff: Handoff; onEnd: () => void }) {
  const { t, lang } = useI18n();
  const who = handoff.clinician ? [handoff.clinician.name, handoff.clinician.title].filter(Boolean).join(" · ") : null;
  return (
    <div
      className={`handoff${handoff.urgent ? " handoff-urgent" : ""}`}
      role={handoff.urgent ? "alert" : "status"}
      aria-label={t("chat.handoffTitle")}
      data-state={handoff.state}
      data-paused={handoff.model_paused}
    >
      <div className="handoff-text">
        <p className="handoff-message">
          {handoff.urgent && <span aria-hidden="true">⚠ </span>}
          {lang === "en" ? handoff.message_en : handoff.message_zh}
        </p>
        {who && <p className="handoff-who">{t("chat.handoffBy", { name: who })}</p>}
        {handoff.model_paused && <p className="handoff-paused">{t("chat.modelPaused")}</p>}
      </div>
      <button type="button" className="btn btn-small" onClick={onEnd}>
        {t("chat.endHandoff")}
      </button>
    </div>
  );
}

function ErrorBanner({
  error,
  busy,
  onRetry,
  onNew,
}: {
  error: ChatError;
  busy: boolean;
  onRetry: () => void;
  onNew: () => void;
}) {
  const { t } = useI18n();
  // Seconds counted since this error arrived (a new error counts from zero).
  const [elapsed, setElapsed] = useState({ error, s: 0 });
  const seconds = elapsed.error === error ? elapsed.s : 0;
  const left = error.kind === "rate_limited" ? Math.max(0, (error.retryAfter ?? 0) - seconds) : 0;
  useEffect(() => {
    if (error.kind !== "rate_limited") return;
    const timer = setInterval(() => setElapsed((e) => ({ error, s: (e.error === error ? e.s : 0) + 1 })), 1000);
    return () => clearInterval(timer);
  }, [error]);
  const text =
    error.kind === "engine_unavailable"
      ? t("error.engine_unavailable")
      : error.kind === "rate_limited"
        ? t("error.rate_limited", { s: left })
        : error.kind === "session_gone"
          ? t("error.session_gone")
          : error.kind === "network"
            ? t("error.network")
            : t("error.generic", { m: error.message });
  return (
    <div className={`error-banner error-${error.kind}`} role="alert">
      <p>{text}</p>
      {error.retryable ? (
        <button type="button" className="btn" disabled={busy || left > 0} onClick={onRetry}>
          {t("error.retry")}
        </button>
      ) : (
        error.kind === "session_gone" && (
          <button type="button" className="btn" onClick={onNew}>
            {t("error.newSession")}
          </button>
        )
      )}
    </div>
  );
}
