import { useEffect, useId, useState } from "react";
import type { FormEvent } from "react";
import { api, unwrap, type CaseDetail, type Message } from "../api/client";
import { usePolling } from "../api/usePolling";
import { useAuth } from "../auth/AuthContext";
import { Markdown } from "../components/Markdown";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { caseTitle, REVIEW_REASONS, reviewReasonKey, slaText, stateKey, type ReviewReason } from "./caseText";

/** One case: the conversation, the AI summary (labelled), and what its clinician can do:
 * claim, pause or resume the model, reply, review AI answers, close. Followed every 5 s. */
export function CasePage({ caseId }: { caseId: string }) {
  const { t } = useI18n();
  const { user } = useAuth();
  const path = { case_id: caseId };
  const detail = usePolling(caseId, () => unwrap(api.GET("/api/cases/{case_id}", { params: { path } })), {
    every: () => 5000,
  });
  const [pauseOnClaim, setPauseOnClaim] = useState(true);
  const [reply, setReply] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [working, setWorking] = useState<string | null>(null);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(timer);
  }, []);

  /** One action at a time; the case is read again afterwards, whatever happened. */
  async function act(name: string, work: () => Promise<unknown>) {
    setProblem(null);
    setWorking(name);
    try {
      await work();
    } catch (e) {
      setProblem((e as Error).message);
    } finally {
      setWorking(null);
      detail.refresh();
    }
  }

  const c = detail.data;
  if (!c) {
    return (
      <p className="muted" role={detail.error ? "alert" : undefined}>
        {detail.error ? detail.error.message : t("common.loading")}
      </p>
    );
  }
  const live = c.state !== "closed";
  const holds = c.claimed_by_me && live; // reply and pause: only whoever holds the case
  const admin = user?.role === "admin";
  const sla = slaText(t, c, now);

  async function send(e: FormEvent) {
    e.preventDefault();
    const content = reply.trim();
    if (!content) return;
    await act("reply", async () => {
      await unwrap(api.POST("/api/cases/{case_id}/messages", { params: { path }, body: { content } }));
      setReply("");
    });
  }

  return (
    <article className="case-page" aria-labelledby="case-title" data-state={c.state}>
      <p className="case-back">
        <Link href="/clinician">← {t("clinician.back")}</Link>
      </p>
      <h1 id="case-title" className="case-title">
        {c.urgent && <span className="badge badge-urgent">{t("clinician.urgent")}</span>} {caseTitle(t, c)}
      </h1>
      <p className="case-status" data-testid="case-state">
        <span className={`badge badge-state badge-${c.state}`}>{t(stateKey(c))}</span>
        {c.claimed_by && <span>{[c.claimed_by.name, c.claimed_by.title].filter(Boolean).join(" · ")}</span>}
        {c.model_paused && <span className="badge badge-paused">{t("clinician.aiPaused")}</span>}
        {(c.state === "open" || c.state === "claimed") && (
          <span className={sla.overdue ? "sla overdue" : "sla"}>{sla.text}</span>
        )}
        <span className="muted">{t("clinician.openedAt", { t: new Date(c.opened_at).toLocaleString() })}</span>
      </p>
      {problem && (
        <p className="form-error" role="alert">
          {problem}
        </p>
      )}
      <div className="case-actions">
        {c.state === "open" && (
          <>
            <label className="check">
              <input type="checkbox" checked={pauseOnClaim} onChange={(e) => setPauseOnClaim(e.target.checked)} />{" "}
              {t("clinician.pauseOnClaim")}
            </label>
            <button
              type="button"
              className="btn btn-primary"
              disabled={working !== null}
              onClick={() =>
                void act("claim", () =>
                  unwrap(
                    api.POST("/api/cases/{case_id}/claim", { params: { path }, body: { pause_model: pauseOnClaim } }),
                  ),
                )
              }
            >
              {t("clinician.claim")}
            </button>
          </>
        )}
        {holds && (
          <button
            type="button"
            className="btn"
            aria-pressed={c.model_paused}
            disabled={working !== null}
            onClick={() =>
              void act("pause", () =>
                unwrap(api.POST("/api/cases/{case_id}/pause", { params: { path }, body: { paused: !c.model_paused } })),
              )
            }
          >
            {t(c.model_paused ? "clinician.resume" : "clinician.pause")}
          </button>
        )}
        {live && (holds || admin) && (
          <button
            type="button"
            className="btn btn-danger"
            disabled={working !== null}
            onClick={() =>
              void act("close", () => unwrap(api.POST("/api/cases/{case_id}/close", { params: { path } })))
            }
          >
            {t("clinician.close")}
          </button>
        )}
      </div>
      <div className="case-columns">
        <section className="case-conversation" aria-label={t("clinician.conversation")}>
          <div className="messages">
            {c.messages.map((m) => (
              <CaseMessage key={m.id} m={m} c={c} canReview={holds || admin} onReviewed={detail.refresh} />
            ))}
          </div>
          {holds ? (
            <form className="case-reply" onSubmit={(e) => void send(e)}>
              <label htmlFor="case-reply">{t("clinician.reply")}</label>
              <textarea
                id="case-reply"
                rows={3}
                value={reply}
                maxLength={20000}
                placeholder={t("clinician.replyPlaceholder")}
                onChange={(e) => setReply(e.target.value)}
              />
              <button type="submit" className="btn btn-primary" disabled={!reply.trim() || working !== null}>
                {t("clinician.send")}
              </button>
            </form>
          ) : (
            c.state === "open" && <p className="muted">{t("clinician.claimFirst")}</p>
          )}
        </section>
        <section className="summary-box" aria-labelledby="case-summary">
          <h2 id="case-summary">{t("clinician.summary")}</h2>
          <p className="badge badge-ai">{t("clinician.summaryLabel")}</p>
          {c.summary && (
            <div className="summary-text" data-ai-generated="true">
              <Markdown text={c.summary.text} />
              {c.summary.model && <p className="muted small">{c.summary.model}</p>}
            </div>
          )}
          <button
            type="button"
            className="btn btn-small"
            disabled={working !== null}
            onClick={() =>
              void act("summary", () => unwrap(api.POST("/api/cases/{case_id}/summary", { params: { path } })))
            }
          >
            {working === "summary" ? t("common.loading") : t("clinician.summarize")}
          </button>
        </section>
      </div>
    </article>
  );
}

function CaseMessage({
  m,
  c,
  canReview,
  onReviewed,
}: {
  m: Message;
  c: CaseDetail;
  canReview: boolean;
  onReviewed: () => void;
}) {
  const { t } = useI18n();
  const role = m.role === "user" ? "user" : m.role === "clinician" ? "clinician" : "assistant";
  // Who wrote it, at a glance: the patient, the model (labelled AI-generated), or a person.
  const who =
    role === "user"
      ? t("clinician.patient")
      : role === "clinician"
        ? [m.author?.name ?? t("chat.aClinician"), m.author?.title].filter(Boolean).join(" · ")
        : t("chat.aiLabel");
  const reviewer = m.review?.reviewer?.name ?? t("chat.aClinician");
  return (
    <div className={`msg msg-${role}`} data-message={m.id} data-role={role}>
      <p className="msg-author">
        <span className={`badge badge-${role === "user" ? "patient" : role === "assistant" ? "ai" : role}`}>{who}</span>
        {m.review && (
          <span className="msg-reviewed">
            {t(m.review.verdict === "corrected" ? "chat.reviewedCorrected" : "chat.reviewed", { name: reviewer })}
          </span>
        )}
      </p>
      <div className="bubble">{role === "user" ? m.content : <Markdown text={m.content} />}</div>
      {m.review?.verdict === "corrected" && m.review.corrected && (
        <div className="bubble bubble-correction">
          <Markdown text={m.review.corrected} />
        </div>
      )}
      {role === "assistant" && canReview && <ReviewForm caseId={c.id} messageId={m.id} onDone={onReviewed} />}
    </div>
  );
}

/** Review one AI answer: mark it correct, or write the corrected answer with a reason. */
export function ReviewForm({ caseId, messageId, onDone }: { caseId: string; messageId: number; onDone: () => void }) {
  const { t } = useI18n();
  const id = useId();
  const [open, setOpen] = useState(false);
  const [text, setText] = useState("");
  const [reason, setReason] = useState<ReviewReason>("factually_wrong");
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const path = { case_id: caseId };

  async function review(verdict: "correct" | "corrected") {
    setProblem(null);
    setBusy(true);
    try {
      const body =
        verdict === "correct"
          ? { message_id: messageId, verdict }
          : { message_id: messageId, verdict, corrected: text.trim(), reason };
      await unwrap(api.POST("/api/cases/{case_id}/reviews", { params: { path }, body }));
      setOpen(false);
      setText("");
      onDone();
    } catch (e) {
      setProblem((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="review-form">
      <div className="case-actions">
        <button type="button" className="btn btn-small" disabled={busy} onClick={() => void review("correct")}>
          {t("clinician.markCorrect")}
        </button>
        <button type="button" className="btn btn-small" aria-expanded={open} onClick={() => setOpen(!open)}>
          {t("clinician.correct")}
        </button>
      </div>
      {open && (
        <div className="review-correction">
          <label htmlFor={`${id}-text`}>{t("clinician.correction")}</label>
          <textarea id={`${id}-text`} rows={3} value={text} onChange={(e) => setText(e.target.value)} />
          <label htmlFor={`${id}-reason`}>{t("clinician.reasonLabel")}</label>
          <select id={`${id}-reason`} value={reason} onChange={(e) => setReason(e.target.value as ReviewReason)}>
            {REVIEW_REASONS.map((r) => (
              <option key={r} value={r}>
                {t(reviewReasonKey(r))}
              </option>
            ))}
          </select>
          <button
            type="button"
            className="btn btn-primary btn-small"
            disabled={!text.trim() || busy}
            onClick={() => void review("corrected")}
          >
            {t("clinician.saveReview")}
          </button>
        </div>
      )}
      {problem && (
        <p className="form-error" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}
