import { useState } from "react";
import type { FormEvent } from "react";
import { api, unwrap, type CaseDetail, type Message } from "../api/client";
import { usePolling } from "../api/usePolling";
import { Markdown } from "../components/Markdown";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { reasonKey, stateKey } from "./caseText";

const REASONS = [
  "factually_wrong",
  "unsafe",
  "missed_red_flag",
  "prescribes",
  "incomplete",
  "unclear",
  "other",
] as const;

/** One case: the conversation, the AI summary (labelled), and what its clinician can do:
 * claim, pause or resume the model, reply, review answers, close. Followed every 5 s. */
export function CasePage({ caseId }: { caseId: string }) {
  const { t } = useI18n();
  const path = { case_id: caseId };
  const detail = usePolling(caseId, () => unwrap(api.GET("/api/cases/{case_id}", { params: { path } })), {
    every: () => 5000,
  });
  const [pauseOnClaim, setPauseOnClaim] = useState(true);
  const [reply, setReply] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [summarizing, setSummarizing] = useState(false);

  async function act(work: () => Promise<unknown>) {
    setProblem(null);
    try {
      await work();
    } catch (e) {
      setProblem((e as Error).message);
    }
    detail.refresh();
  }

  const c = detail.data;
  if (!c) return <p className="muted">{detail.error ? detail.error.message : t("common.loading")}</p>;
  const mine = c.claimed_by_me && c.state !== "closed";

  async function send(e: FormEvent) {
    e.preventDefault();
    const content = reply.trim();
    if (!content) return;
    await act(async () => {
      await unwrap(api.POST("/api/cases/{case_id}/messages", { params: { path }, body: { content } }));
      setReply("");
    });
  }

  return (
    <article aria-label={t("clinician.title")}>
      <p>
        <Link href="/clinician">← {t("clinician.back")}</Link>
      </p>
      <h1>
        {c.urgent && <span className="badge badge-urgent">{t("clinician.urgent")}</span>} {t(reasonKey(c))}
        {c.category ? ` · ${c.category}` : ""}
      </h1>
      <p className="muted" data-testid="case-state">
        {t(stateKey(c))}
        {c.claimed_by ? ` · ${c.claimed_by.name}` : ""}
        {c.model_paused ? ` · ${t("chat.modelPaused")}` : ""}
      </p>
      {problem && <p role="alert">{problem}</p>}
      <div className="case-actions">
        {c.state === "open" && (
          <>
            <label>
              <input type="checkbox" checked={pauseOnClaim} onChange={(e) => setPauseOnClaim(e.target.checked)} />{" "}
              {t("clinician.pauseOnClaim")}
            </label>
            <button
              type="button"
              className="btn btn-primary"
              onClick={() =>
                void act(() =>
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
        {mine && (
          <>
            <button
              type="button"
              className="btn"
              onClick={() =>
                void act(() =>
                  unwrap(
                    api.POST("/api/cases/{case_id}/pause", { params: { path }, body: { paused: !c.model_paused } }),
                  ),
                )
              }
            >
              {t(c.model_paused ? "clinician.resume" : "clinician.pause")}
            </button>
            <button
              type="button"
              className="btn btn-danger"
              onClick={() => void act(() => unwrap(api.POST("/api/cases/{case_id}/close", { params: { path } })))}
            >
              {t("clinician.close")}
            </button>
          </>
        )}
      </div>
      <section className="summary-box" aria-label={t("clinician.summary")}>
        <strong>{t("clinician.summary")}</strong> <span className="badge">{t("clinician.summaryLabel")}</span>
        {c.summary && <Markdown text={c.summary.text} />}
        <button
          type="button"
          className="btn btn-small"
          disabled={summarizing}
          onClick={() => {
            setSummarizing(true);
            void act(() => unwrap(api.POST("/api/cases/{case_id}/summary", { params: { path } }))).finally(() =>
              setSummarizing(false),
            );
          }}
        >
          {summarizing ? t("common.loading") : t("clinician.summarize")}
        </button>
      </section>
      <div className="messages">
        {c.messages.map((m) => (
          <CaseMessage key={m.id} m={m} c={c} canReview={mine} onReviewed={() => detail.refresh()} />
        ))}
      </div>
      {mine && (
        <form className="case-reply" onSubmit={(e) => void send(e)}>
          <label htmlFor="case-reply">{t("clinician.reply")}</label>
          <textarea
            id="case-reply"
            rows={3}
            value={reply}
            maxLength={20000}
            onChange={(e) => setReply(e.target.value)}
          />
          <button type="submit" className="btn btn-primary" disabled={!reply.trim()}>
            {t("clinician.send")}
          </button>
        </form>
      )}
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
  const label =
    role === "user"
      ? t("clinician.patient")
      : role === "clinician"
        ? (m.author?.name ?? t("chat.aClinician"))
        : t("chat.aiLabel");
  return (
    <div className={`msg msg-${role}`} data-message={m.id}>
      <p className="msg-author">
        <span className="badge">{label}</span>
        {m.review &&
          ` · ${t(m.review.verdict === "corrected" ? "chat.reviewedCorrected" : "chat.reviewed", { name: m.review.reviewer?.name ?? "" })}`}
      </p>
      <div className="bubble">{role === "user" ? m.content : <Markdown text={m.content} />}</div>
      {m.review?.corrected && (
        <div className="bubble bubble-correction">
          <Markdown text={m.review.corrected} />
        </div>
      )}
      {role === "assistant" && canReview && <ReviewForm caseId={c.id} messageId={m.id} onDone={onReviewed} />}
    </div>
  );
}

function ReviewForm({ caseId, messageId, onDone }: { caseId: string; messageId: number; onDone: () => void }) {
  const { t } = useI18n();
  const [open, setOpen] = useState(false);
  const [text, setText] = useState("");
  const [reason, setReason] = useState<(typeof REASONS)[number]>("factually_wrong");
  const [problem, setProblem] = useState<string | null>(null);
  const path = { case_id: caseId };

  async function review(verdict: "correct" | "corrected") {
    setProblem(null);
    try {
      const body =
        verdict === "correct"
          ? { message_id: messageId, verdict }
          : { message_id: messageId, verdict, corrected: text, reason };
      await unwrap(api.POST("/api/cases/{case_id}/reviews", { params: { path }, body }));
      setOpen(false);
      onDone();
    } catch (e) {
      setProblem((e as Error).message);
    }
  }

  return (
    <div className="review-form">
      <div className="case-actions">
        <button type="button" className="btn btn-small" onClick={() => void review("correct")}>
          {t("clinician.markCorrect")}
        </button>
        <button type="button" className="btn btn-small" onClick={() => setOpen(!open)}>
          {t("clinician.correct")}
        </button>
      </div>
      {open && (
        <>
          <label>
            {t("clinician.correction")}
            <textarea rows={3} value={text} onChange={(e) => setText(e.target.value)} />
          </label>
          <label>
            {t("clinician.reasonLabel")}{" "}
            <select value={reason} onChange={(e) => setReason(e.target.value as (typeof REASONS)[number])}>
              {REASONS.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            className="btn btn-primary btn-small"
            disabled={!text.trim()}
            onClick={() => void review("corrected")}
          >
            {t("clinician.saveReview")}
          </button>
        </>
      )}
      {problem && <p role="alert">{problem}</p>}
    </div>
  );
}
