import { useState } from "react";
import { ApiError } from "./api/client";
import { AuthForm } from "./auth/AuthForm";
import { useAuth } from "./auth/AuthContext";
import { LangSwitch, useI18n } from "./i18n";

export function Welcome() {
  const { t } = useI18n();
  const { startGuest } = useAuth();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  return (
    <div className="welcome">
      <header className="topbar">
        <span className="brand">{t("app.name")}</span>
        <span className="spacer" />
        <LangSwitch />
      </header>
      <main className="welcome-main">
        <h1>{t("app.name")}</h1>
        <p className="tagline">{t("app.tagline")}</p>
        <p>{t("welcome.what")}</p>
        <section className="disclaimer" aria-labelledby="disclaimer-title">
          <h2 id="disclaimer-title">{t("welcome.disclaimerTitle")}</h2>
          <p>{t("welcome.disclaimer")}</p>
        </section>
        <div className="welcome-actions">
          <div className="guest">
            <button
              className="btn btn-primary btn-large"
              type="button"
              disabled={busy}
              onClick={async () => {
                setBusy(true);
                setError(null);
                try {
                  await startGuest();
                } catch (e) {
                  setError(e instanceof ApiError ? e.message : String(e));
                  setBusy(false);
                }
              }}
            >
              {t("welcome.guest")}
            </button>
            <p className="hint">{t("welcome.guestHint")}</p>
            {error && (
              <p className="form-error" role="alert">
                {error}
              </p>
            )}
          </div>
          <AuthForm />
        </div>
      </main>
    </div>
  );
}
