"""`medchat serve` (the gateway under uvicorn) and `medchat chat` (DISC-MedLLM's command-line
demo, through the gateway)."""

from __future__ import annotations

import sys

import click
import httpx
import orjson
from rich.console import Console


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Gateway processes (each with its own pools).",
)
@click.option("--log-level", default="info", show_default=True)
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the gateway. Settings come from MEDCHAT_* variables (or .env)."""
    import uvicorn

    from services.gateway.app import StartupError, load_format
    from services.gateway.config import GatewaySettings
    from services.gateway.observability import configure_logging

    configure_logging(log_level.upper())
    try:  # before uvicorn, so that a bad setting is one clear line, not a lifespan traceback
        load_format(GatewaySettings())
    except StartupError as exc:
        raise click.ClickException(str(exc)) from exc
    uvicorn.run(
        "services.gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # keep our JSON logging
        log_level=log_level,
        # X-Forwarded-For is read by the gateway itself, from MEDCHAT_TRUSTED_PROXIES only
        # (uvicorn's own handling would believe it from any local peer).
        proxy_headers=False,
    )


HELP = "/new 新对话  /history 历史  /quit 退出"


@click.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The gateway.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def chat(url: str, lang: str) -> None:
    """Talk to DISC-MedLLM in the terminal, with streamed answers (as a guest)."""
    out = Console(highlight=False)
    with httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=300)) as client:
        try:
            csrf = client.post("/api/auth/guest").json()["csrf_token"]
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the gateway at {url}: {exc}") from exc
        headers = {"X-CSRF-Token": csrf}

        def new_session() -> str:
            return str(client.post("/api/sessions", json={}, headers=headers).json()["id"])

        session = new_session()
        out.print(f"[bold]DISC-MedLLM[/bold]  {HELP}")
        out.print("[dim]回答由人工智能模型生成，仅供参考，不能替代医生的诊断。[/dim]")
        while True:
            try:
                question = input("\n用户：").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if question == "/quit":
                break
            if question == "/new":
                session = new_session()
                out.print("[dim]已开始新对话[/dim]")
                continue
            if question == "/history":
                for m in client.get(f"/api/sessions/{session}").json()["messages"]:
                    who = "用户" if m["role"] == "user" else "DISC-MedLLM"
                    out.print(f"[bold]{who}：[/bold]{m['content']}")
                continue
            if question:
                _ask(client, out, session, question, headers, lang)


def _ask(
    client: httpx.Client,
    out: Console,
    session: str,
    question: str,
    headers: dict[str, str],
    lang: str,
) -> None:
    out.print("\nDISC-MedLLM：", end="")
    event = ""
    with client.stream(
        "POST",
        f"/api/sessions/{session}/messages",
        headers=headers,
        json={"content": question, "lang": lang},
    ) as r:
        if r.status_code != 200:
            r.read()
            out.print(f"[red]{r.json()['error']['message']}[/red]")
            return
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
                if event == "delta":
                    out.print(data["text"], end="")
                    sys.stdout.flush()
                elif event == "meta" and data.get("emergency"):
                    out.print(f"\n[bold red]{data['emergency']['message_zh']}[/bold red]\n")
                elif event == "error":
                    out.print(f"\n[red]{data['error']['message']}[/red]")
    out.print()
