import type { ReactNode } from "react";
import { useAuth } from "../auth/AuthContext";
import { LangSwitch, useI18n } from "../i18n";
import { Link, usePath } from "../router";

export function AdminLayout({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const { user } = useAuth();
  const path = usePath();
  const tabs = [
    ["/admin/datasets", t("admin.datasets")],
    ["/admin/jobs", t("admin.finetunes")],
    ["/admin/models", t("admin.models")],
    ["/admin/evals", t("admin.evals")],
    ["/admin/reviews", t("admin.reviews")],
    ["/admin/audit", t("admin.audit")],
  ] as const;
  return (
    <div className="admin">
      <header className="topbar">
        <span className="brand">
          {t("app.name")} · {t("admin.title")}
        </span>
        <span className="spacer" />
        <Link className="btn btn-ghost" href="/clinician">
          {t("clinician.title")}
        </Link>
        <Link className="btn btn-ghost" href="/chat">
          {t("admin.backToChat")}
        </Link>
        <LangSwitch />
      </header>
      <nav className="admin-tabs" aria-label={t("admin.title")}>
        {tabs.map(([href, label]) => (
          <Link key={href} href={href} aria-current={path.startsWith(href) ? "page" : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      <main className="admin-main">
        {user?.role === "admin" ? children : <p role="alert">{t("admin.forbidden")}</p>}
      </main>
    </div>
  );
}
