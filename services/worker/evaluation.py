"""The evaluation task: runs (or resumes) a dialogue-evaluation run. The model under test is
called through the gateway with an API key made for the run and revoked when it ends."""

from __future__ import annotations

import logging

from services.eval import store
from services.eval.client import ChatClient, Endpoint, parse_endpoint
from services.eval.config import EvalSettings
from services.eval.runner import Clients, Options, RunError, run_dialogues
from services.store import apikeys

from .db import sessions, task_engine

log = logging.getLogger(__name__)


async def eval_run(run_id: str, settings: EvalSettings) -> None:
    async with task_engine(settings.database_url) as engine:
        async with sessions(engine)() as db:
            run = await store.get_run(db=db, run_id=run_id)
            if run is None or run.status not in ("queued", "running"):
                return  # gone, or already final (a redelivered task of a finished run)
            key_row, key = await apikeys.create_api_key(
                db=db, name=f"eval:{run_id}", role="integrator", user_id=run.created_by
            )
            config = run.config
            model = run.model
            await db.commit()

        def client(endpoint: Endpoint) -> ChatClient:
            return ChatClient(
                endpoint, timeout_s=settings.eval_timeout_s, retries=settings.eval_retries
            )

        clients = Clients(
            doctor=client(Endpoint(settings.eval_gateway_url.rstrip("/") + "/v1", model, key)),
            patient=client(parse_endpoint(config["patient"], settings.eval_patient_api_key)),
            judge=client(parse_endpoint(config["judge"], settings.eval_judge_api_key)),
        )
        options = Options(
            data_dir=settings.eval_data_dir,
            concurrency=int(config.get("concurrency") or settings.eval_concurrency),
            judge_retries=settings.eval_judge_retries,
        )
        try:
            await run_dialogues(
                run_id,
                engine=engine,
                clients=clients,
                options=options,
                output=settings.eval_results_dir / f"{run_id}.jsonl",
            )
        except RunError as exc:
            log.warning("%s", exc)
        finally:
            await clients.close()
            async with sessions(engine)() as db:
                await apikeys.revoke_api_key(db=db, key_id=key_row.id)
                await db.commit()
