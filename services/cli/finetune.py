"""`medchat finetune`: the fine-tuning API from the command line (an admin API key)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class Api:
    def __init__(self, url: str, key: str):
        self.client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(30, read=600),
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach the gateway at {self.client.base_url}: {exc}"
            ) from exc
        if r.status_code >= 400:
            try:
                error = r.json()["error"]
            except (ValueError, KeyError, TypeError):
                raise click.ClickException(f"{r.status_code}: {r.text[:300]}") from None
            details = "".join(
                f"\n  line {d.get('line')}: {d.get('message')} ({d.get('code')})"
                for d in (error.get("details") or [])[:20]
            )
            raise click.ClickException(f"{error['code']}: {error['message']}{details}")
        return r.json()


pass_api = click.make_pass_decorator(Api)


@click.group()
@click.option("--url", envvar="MEDCHAT_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--api-key", envvar="MEDCHAT_API_KEY", required=True, help="An admin key (mk-…).")
@click.pass_context
def finetune(ctx: click.Context, url: str, api_key: str) -> None:
    """Upload datasets and run fine-tuning jobs (admin API key in MEDCHAT_API_KEY)."""
    ctx.obj = Api(url, api_key)


@finetune.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_api
def upload(api: Api, file: Path) -> None:
    """Upload a JSONL dataset; prints its file id."""
    size = file.stat().st_size
    with Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err) as bar:
        task = bar.add_task("upload", total=size)

        def chunks() -> Any:
            with file.open("rb") as f:
                while block := f.read(1 << 20):
                    bar.advance(task, len(block))
                    yield block

        boundary = "medchat-upload-boundary"
        name = file.name.replace('"', "%22").replace("\r", "").replace("\n", "")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
            "\r\nContent-Type: application/jsonl\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Any:
            yield head
            yield from chunks()
            yield tail

        f = api.call(
            "POST",
            "/v1/files",
            content=body(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + size + len(tail)),
            },
        )
    err.print(f"{f['rows']} rows, {f['bytes']} bytes, sha256 {f['sha256'][:16]}…")
    out.print(f["id"])


@finetune.command()
@click.option("--model", required=True, help="Base model in the registry.")
@click.option("--file", "training_file", required=True, help="Training file id.")
@click.option("--validation-file")
@click.option("--suffix")
@click.option("--seed", type=int)
@click.option("--epochs", default="auto", show_default=True)
@click.option("--batch-size", default="auto", show_default=True)
@click.option("--lr-multiplier", default="auto", show_default=True)
@click.option("--max-seq-length", type=int)
@click.option("--lora", is_flag=True, help="Train a LoRA adapter instead of all weights.")
@pass_api
def create(
    api: Api,
    model: str,
    training_file: str,
    validation_file: str | None,
    suffix: str | None,
    seed: int | None,
    epochs: str,
    batch_size: str,
    lr_multiplier: str,
    max_seq_length: int | None,
    lora: bool,
) -> None:
    """Create a fine-tuning job; prints its id."""

    def value(v: str, kind: type) -> Any:
        return v if v == "auto" else kind(v)

    hp = {
        "n_epochs": value(epochs, int),
        "batch_size": value(batch_size, int),
        "learning_rate_multiplier": value(lr_multiplier, float),
    }
    body: dict[str, Any] = {
        "model": model,
        "training_file": training_file,
        "validation_file": validation_file,
        "suffix": suffix,
        "seed": seed,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        "max_seq_length": max_seq_length,
        "lora": lora or None,
    }
    job = api.call("POST", "/v1/fine_tuning/jobs", json=body)
    out.print(job["id"])


@finetune.command("list")
@click.option("--limit", default=20, show_default=True)
@pass_api
def list_jobs(api: Api, limit: int) -> None:
    """Fine-tuning jobs, newest first."""
    table = Table()
    table.add_column("id", no_wrap=True)  # ids are copied from here: never cut them
    for name in ("status", "model", "fine-tuned model", "created"):
        table.add_column(name, overflow="fold")
    for job in api.call("GET", "/v1/fine_tuning/jobs", params={"limit": limit})["data"]:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job["created_at"]))
        table.add_row(
            job["id"], job["status"], job["model"], job["fine_tuned_model"] or "", created
        )
    out.print(table)


@finetune.command()
@click.argument("job_id")
@pass_api
def status(api: Api, job_id: str) -> None:
    """A job, as JSON."""
    out.print_json(json.dumps(api.call("GET", f"/v1/fine_tuning/jobs/{job_id}")))


@finetune.command()
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True, help="Stream new events until the job ends.")
@pass_api
def events(api: Api, job_id: str, follow: bool) -> None:
    """A job's events, oldest first."""
    if not follow:
        page = api.call("GET", f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 1000})
        for e in reversed(page["data"]):
            _print_event(e)
        return
    path = f"/v1/fine_tuning/jobs/{job_id}/events"
    with api.client.stream("GET", path, params={"stream": True}) as r:
        if r.status_code >= 400:
            r.read()
            raise click.ClickException(f"{r.status_code}: {r.text[:300]}")
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if kind == "end":
                    err.print(f"job {data['status']}")
                    return
                _print_event(data)


def _print_event(e: dict[str, Any]) -> None:
    when = time.strftime("%H:%M:%S", time.localtime(e["created_at"]))
    style = {"error": "red", "warn": "yellow"}.get(e["level"], "")
    message = f"[{style}]{e['message']}[/{style}]" if style else e["message"]
    out.print(f"[dim]{when}[/dim] {message}")


@finetune.command()
@click.argument("job_id")
@pass_api
def cancel(api: Api, job_id: str) -> None:
    """Cancel a job (a running trainer is stopped within seconds)."""
    job = api.call("POST", f"/v1/fine_tuning/jobs/{job_id}/cancel")
    out.print(f"{job['id']} {job['status']}")


@finetune.command()
@click.argument("model", required=False)
@pass_api
def serve(api: Api, model: str | None) -> None:
    """Show the model that answers patients, or make MODEL answer them (a fine-tune from
    `GET /v1/models`, or the engine's own model). The gateway asks the engine first and
    refuses a model it does not answer for."""
    if model is None:
        choice = api.call("GET", "/api/admin/serving")
    else:
        choice = api.call("PUT", "/api/admin/serving", json={"model": model})
    default = " (the engine's own model)" if choice["model"] == choice["default_model"] else ""
    out.print(f"serving {choice['model']}{default}")
