import type { ReactNode } from "react";
import { useAuth } from "../auth/AuthContext";
import { LangSwitch, useI18n } from "../i18n";
import { Link, navigate } from "../router";

/** The clinician console's frame: clinicians and admins only (the gateway enforces it too). */
export function ClinicianLayout({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const { user, signOut } = useAuth();
  const allowed = user?.role === "clinician" || user?.role === "admin";
  return (
    <div className="admin clinician">
      <header className="topbar">
        <Link className="brand" href="/clinician">
          <span className="brand-full">{t("app.name")} · </span>
          {t("clinician.title")}
        </Link>
        <span className="spacer" />
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
      <main className="clinician-page">{allowed ? children : <p role="alert">{t("clinician.forbidden")}</p>}</main>
    </div>
  );
}
