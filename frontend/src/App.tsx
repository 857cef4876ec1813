import { useEffect } from "react";
import { AdminLayout } from "./admin/AdminLayout";
import { Audit } from "./admin/Audit";
import { DatasetPage } from "./admin/DatasetPage";
import { Datasets } from "./admin/Datasets";
import { EvalRunPage } from "./admin/EvalRunPage";
import { Evals } from "./admin/Evals";
import { FineTunes } from "./admin/FineTunes";
import { JobPage } from "./admin/JobPage";
import { Models } from "./admin/Models";
import { Reviews } from "./admin/Reviews";
import { useAuth } from "./auth/AuthContext";
import { ChatPage } from "./chat/ChatPage";
import { CasePage } from "./clinician/CasePage";
import { CaseQueue } from "./clinician/CaseQueue";
import { ClinicianLayout } from "./clinician/ClinicianLayout";
import { useI18n } from "./i18n";
import { match, navigate, usePath } from "./router";
import { Welcome } from "./Welcome";

export function App() {
  const { t } = useI18n();
  const { user, loading } = useAuth();
  const path = usePath();

  useEffect(() => {
    if (!loading && user && path === "/")
      navigate(user.role === "clinician" ? "/clinician" : "/chat", { replace: true });
  }, [loading, user, path]);

  if (loading) return <p className="muted center">{t("common.loading")}</p>;
  if (!user) return <Welcome />;

  let params: Record<string, string> | null;
  if ((params = match("/chat/:id", path))) return <ChatPage sessionId={params.id} />;
  if (path.startsWith("/clinician")) {
    params = match("/clinician/cases/:id", path);
    return <ClinicianLayout key={path}>{params ? <CasePage caseId={params.id} /> : <CaseQueue />}</ClinicianLayout>;
  }
  if (path.startsWith("/admin")) {
    let page = <Datasets />;
    if ((params = match("/admin/datasets/:id", path))) page = <DatasetPage fileId={params.id} />;
    else if ((params = match("/admin/jobs/:id", path))) page = <JobPage jobId={params.id} />;
    else if (path.startsWith("/admin/jobs")) page = <FineTunes />;
    else if (path.startsWith("/admin/models")) page = <Models />;
    else if ((params = match("/admin/evals/:id", path))) page = <EvalRunPage runId={params.id} />;
    else if (path.startsWith("/admin/evals")) page = <Evals />;
    else if (path.startsWith("/admin/audit")) page = <Audit />;
    else if (path.startsWith("/admin/reviews")) page = <Reviews />;
    return <AdminLayout key={path}>{page}</AdminLayout>;
  }
  return <ChatPage sessionId={null} />;
}
