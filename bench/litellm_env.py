"""The reference side of the side-by-side benchmark: the LiteLLM proxy from PyPI in a venv of
its own, configured exactly as ../shared/bench/compare.py configures it (one worker, no
database, telemetry off, the local cost map; Redis response cache when cached), and the fake
OpenAI upstream (bench/fake_openai.py), served by that venv's uvicorn + uvloop.

The venv is compare.py's: $XDG_CACHE_HOME/litellm-bench/venv (~/.cache/... by default), built
once from PyPI when missing and reused when present (BENCH_LITELLM_CACHE names another
directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import processes

VERSION = "1.108.7"
MASTER_KEY = "sk-bench-master-1234"
HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    if configured := os.environ.get("BENCH_LITELLM_CACHE"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "litellm-bench"


def ensure_venv(cache: Path) -> Path:
    venv = cache / "venv"
    if not (venv / "bin" / "litellm").exists():
        print(f"building the LiteLLM venv in {venv} (once)", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={VERSION}", "uvicorn", "uvloop"], check=True
        )
    return venv


def installed_version(venv: Path) -> str:
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() or "unknown"


def _base_env() -> dict[str, str]:
    """The environment without DATABASE_URL (LiteLLM runs without a database) and without our
    venv's Python settings (`make bench` sets PYTHONPATH for our code, not for LiteLLM's)."""
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV")}


def start_upstream(venv: Path, *, port: int, work: Path) -> subprocess.Popen[bytes]:
    argv = [str(venv / "bin" / "uvicorn"), "fake_openai:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    proc = processes.start(argv, cwd=HERE, env=_base_env(), log_file=work / "upstream.log")
    processes.wait_http(f"http://127.0.0.1:{port}/stats", timeout_s=120, proc=proc)
    return proc


def write_config(path: Path, *, upstream_port: int, cached: bool) -> Path:
    lines = [
        "model_list:",
        "  - model_name: gpt-4o-mini",
        "    litellm_params:",
        "      model: openai/gpt-4o-mini",
        f"      api_base: http://127.0.0.1:{upstream_port}/v1",
        "      api_key: sk-dummy-upstream-key",
        "litellm_settings:",
        "  telemetry: false",
    ]
    if cached:
        lines += ["  cache: true", "  cache_params:", "    type: redis", "    host: 127.0.0.1"]
        lines += ["    port: 6379", "    ttl: 600"]
    lines += ["general_settings:", f"  master_key: {MASTER_KEY}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def start_proxy(venv: Path, *, port: int, upstream_port: int, cached: bool, work: Path) -> subprocess.Popen[bytes]:
    config = write_config(
        work / f"litellm-{'cached' if cached else 'uncached'}.yaml", upstream_port=upstream_port, cached=cached
    )
    env = dict(
        _base_env(),
        LITELLM_TELEMETRY="False",
        LITELLM_TELEMETRY_DISABLED="True",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_MODE="PRODUCTION",
        LITELLM_DONT_SHOW_FEEDBACK_BOX="True",
        NO_PROXY="127.0.0.1,localhost",
    )
    argv = [str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    proc = processes.start([*argv, "--num_workers", "1"], cwd=work, env=env, log_file=work / "litellm.log")
    processes.wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout_s=300, proc=proc)
    return proc
