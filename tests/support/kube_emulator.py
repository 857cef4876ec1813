"""The remote end of the worker's Kubernetes backend, emulated: a one-node "cluster" that
serves the few API calls training uses (create, read, delete a batch/v1 Job or a Kubeflow
PyTorchJob) and runs the pod's command on this machine, with this checkout's Python first on
the PATH. Everything up to the API server is the real worker; every Job it returns is checked
against the Kubernetes schema by the tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.servers import free_port


@dataclass
class Cluster:
    url: str
    token: str
    created: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    served: list[dict[str, Any]] = field(default_factory=list)  # every object returned
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


def _status(kind: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    code = proc.poll()
    if kind == "Job":
        if code is None:
            return {"active": 1}
        done = "Complete" if code == 0 else "Failed"
        return {
            "succeeded" if code == 0 else "failed": 1,
            "conditions": [{"type": done, "status": "True", "reason": f"exit {code}"}],
        }
    if code is None:
        return {"conditions": [{"type": "Running", "status": "True"}]}
    done = "Succeeded" if code == 0 else "Failed"
    return {"conditions": [{"type": done, "status": "True", "message": f"exit {code}"}]}


@contextmanager
def kube_emulator(workdir: Path, token: str = "test-token") -> Iterator[Cluster]:
    port = free_port()
    cluster = Cluster(f"http://127.0.0.1:{port}", token)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def authorized(request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {token}"

    async def create(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        body = await request.json()
        cluster.created.append(body)
        name = body["metadata"]["name"]
        if body["kind"] == "Job":
            container = body["spec"]["template"]["spec"]["containers"][0]
        else:
            container = body["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"][
                "containers"
            ][0]
        pod_env = {**env, **{e["name"]: e["value"] for e in container.get("env", [])}}
        with (workdir / f"{name}.log").open("wb") as log:
            cluster.procs[name] = subprocess.Popen(
                container["command"],
                env=pod_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return web.json_response(body, status=201)

    async def read(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        name = request.match_info["name"]
        body = next((b for b in cluster.created if b["metadata"]["name"] == name), None)
        if body is None or name in cluster.deleted:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        obj = {**body, "status": _status(body["kind"], cluster.procs[name])}
        cluster.served.append(obj)
        return web.json_response(obj)

    async def delete(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        name = request.match_info["name"]
        cluster.deleted.append(name)
        proc = cluster.procs.get(name)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        return web.json_response({"kind": "Status", "status": "Success"})

    app = web.Application()
    for path in (
        "/apis/batch/v1/namespaces/{ns}/jobs",
        "/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs",
    ):
        app.router.add_post(path, create)
        app.router.add_get(path + "/{name}", read)
        app.router.add_delete(path + "/{name}", delete)

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield cluster
    finally:
        for proc in cluster.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
