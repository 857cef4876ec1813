import { useId, useState } from "react";
import type { FormEvent } from "react";
import { ApiError } from "../api/client";
import { useI18n } from "../i18n";
import { useAuth } from "./AuthContext";

export function AuthForm({ initial = "signIn", onDone }: { initial?: "signIn" | "signUp"; onDone?: () => void }) {
  const { t } = useI18n();
  const { signIn, signUp } = useAuth();
  const [mode, setMode] = useState(initial);
  const [identifier, setIdentifier] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await (mode === "signIn" ? signIn : signUp)(identifier, password);
      onDone?.();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="auth-form" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{mode === "signIn" ? t("auth.signIn") : t("auth.signUp")}</h2>
      <label htmlFor={`${id}-id`}>{t("auth.identifier")}</label>
      <input
        id={`${id}-id`}
        name="identifier"
        autoComplete="username"
        required
        value={identifier}
        onChange={(e) => setIdentifier(e.target.value)}
      />
      <label htmlFor={`${id}-pw`}>{t("auth.password")}</label>
      <input
        id={`${id}-pw`}
        name="password"
        type="password"
        autoComplete={mode === "signIn" ? "current-password" : "new-password"}
        minLength={8}
        required
        value={password}
        onChange={(e) => setPassword(e.target.value)}
      />
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <button className="btn btn-primary" type="submit" disabled={busy}>
        {mode === "signIn" ? t("auth.submitSignIn") : t("auth.submitSignUp")}
      </button>
      <button type="button" className="btn btn-link" onClick={() => setMode(mode === "signIn" ? "signUp" : "signIn")}>
        {mode === "signIn" ? t("auth.switchToSignUp") : t("auth.switchToSignIn")}
      </button>
    </form>
  );
}
