import { useEffect, useState } from "react";
import type { FormEvent } from "react";
import { api, unwrap, type Session } from "../api/client";
import { useI18n } from "../i18n";
import { Link } from "../router";

interface Props {
  activeId: string | null;
  version: number;
  onNew: () => void;
  onDeleted: (id: string) => void;
  onChanged: () => void;
}

/** The patient's consultations, newest first: open, rename, delete. */
export function SessionList({ activeId, version, onNew, onDeleted, onChanged }: Props) {
  const { t } = useI18n();
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [title, setTitle] = useState("");

  useEffect(() => {
    let live = true;
    unwrap(api.GET("/api/sessions", { params: { query: { limit: 100 } } }))
      .then((page) => live && setSessions(page.data))
      .catch(() => live && setSessions([]));
    return () => {
      live = false;
    };
  }, [version]);

  async function rename(e: FormEvent, id: string) {
    e.preventDefault();
    const value = title.trim();
    if (!value) return;
    await unwrap(
      api.PATCH("/api/sessions/{session_id}", { params: { path: { session_id: id } }, body: { title: value } }),
    );
    setEditing(null);
    onChanged();
  }

  async function remove(id: string) {
    if (!window.confirm(t("chat.confirmDelete"))) return;
    await unwrap(api.DELETE("/api/sessions/{session_id}", { params: { path: { session_id: id } } }));
    onDeleted(id);
    onChanged();
  }

  return (
    <nav className="sessions" aria-label={t("chat.sessions")}>
      <button type="button" className="btn btn-primary btn-block" onClick={onNew}>
        + {t("chat.new")}
      </button>
      <h2 className="sessions-title">{t("chat.sessions")}</h2>
      {sessions === null ? (
        <p className="muted">{t("common.loading")}</p>
      ) : sessions.length === 0 ? (
        <p className="muted">{t("chat.noSessions")}</p>
      ) : (
        <ul className="session-list">
          {sessions.map((s) => (
            <li key={s.id} className={s.id === activeId ? "active" : undefined}>
              {editing === s.id ? (
                <form className="rename" onSubmit={(e) => rename(e, s.id)}>
                  <label className="sr-only" htmlFor={`rename-${s.id}`}>
                    {t("chat.renameLabel")}
                  </label>
                  <input
                    id={`rename-${s.id}`}
                    value={title}
                    maxLength={200}
                    autoFocus
                    onChange={(e) => setTitle(e.target.value)}
                    onKeyDown={(e) => e.key === "Escape" && setEditing(null)}
                  />
                  <button type="submit" className="btn btn-small">
                    {t("chat.save")}
                  </button>
                  <button type="button" className="btn btn-small" onClick={() => setEditing(null)}>
                    {t("chat.cancel")}
                  </button>
                </form>
              ) : (
                <>
                  <Link
                    href={`/chat/${s.id}`}
                    className="session-link"
                    aria-current={s.id === activeId ? "page" : undefined}
                  >
                    {s.title || t("chat.untitled")}
                  </Link>
                  <span className="session-actions">
                    <button
                      type="button"
                      className="btn btn-icon"
                      aria-label={`${t("chat.rename")}: ${s.title || t("chat.untitled")}`}
                      title={t("chat.rename")}
                      onClick={() => {
                        setEditing(s.id);
                        setTitle(s.title);
                      }}
                    >
                      ✎
                    </button>
                    <button
                      type="button"
                      className="btn btn-icon"
                      aria-label={`${t("chat.delete")}: ${s.title || t("chat.untitled")}`}
                      title={t("chat.delete")}
                      onClick={() => remove(s.id)}
                    >
                      🗑
                    </button>
                  </span>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}
