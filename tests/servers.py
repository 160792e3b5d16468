"""`lightning-gans serve` and `lightning-gans demo` as subprocesses on free localhost ports, for the HTTP and browser
tests: tiny pretrained folders, start several at once, wait until they answer, stop them with everything they
started (LitServe's workers, Gradio's threads)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from lightning_gans.models import FAMILIES
from lightning_gans.pretrained import save_pretrained
from tests.families import TINY


def tiny_folder(name: str, root: Path, **card) -> Path:
    """A pretrained folder of the tiny ``name``, with ``card`` in its model card: untrained and seeded. A text model's
    weights are drawn wider than their initialisation (N(0, 0.5^2)): initialised, a tiny one barely reads its prompt
    (two prompts give the same PNG), and the tests check that the prompt changes the image."""
    torch.manual_seed(0)
    model = FAMILIES[name](**TINY[name].kwargs)
    with torch.no_grad():
        for weight in model.parameters() if model.takes_text else ():
            if weight.dim() > 1:
                weight.normal_(0, 0.5)
    return save_pretrained(model, root / name, grid=False, card=card)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    """A started ``lightning-gans`` command: its URL, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def start(command: str, args: list[str], log: Path) -> Process:
    """``lightning-gans <command> <args> --port <free port>`` in its own process group, not waited for. Run as
    ``python -m lightning_gans.<command>``: LitServe's worker processes (spawned) then import that module only, not
    the whole training CLI (test_serve.py checks the ``lightning-gans`` dispatch itself)."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"lightning_gans.{command}", *args, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Process(f"http://127.0.0.1:{port}", process, log)


def wait_until_up(processes: list[Process], path: str, timeout: float = 180) -> None:
    """Wait until every process answers ``GET path`` with 200; fail with its log if one exits or never does."""
    deadline, waiting = time.monotonic() + timeout, list(processes)
    while waiting:
        for proc in list(waiting):
            if proc.process.poll() is not None:
                raise RuntimeError(f"{proc.url} exited with {proc.process.returncode}:\n{proc.output()}")
            try:
                with urllib.request.urlopen(proc.url + path, timeout=2) as answer:
                    if answer.status == 200:
                        waiting.remove(proc)
            except OSError:
                pass
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"{waiting[0].url} did not answer {path} in {timeout} s:\n{waiting[0].output()}")
        time.sleep(0.3)
