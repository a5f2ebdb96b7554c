"""wrk (the Debian package) as the load generator of the side-by-side benchmark: a Lua script
that spreads requests over bearer tokens, and one timed run's figures as a dict.

The script is ../shared/bench/compare.py's, so both measure the same requests: a POST of an
OpenAI chat completion with a random token of the list; the prompt is "hello" when cached,
"hello" and two random numbers otherwise (so nothing can be answered from a cache). A threaded
script sends each token's own thread id with it (`thread_id`, our extra body field), so every
request continues that user's conversation. One difference: compare.py's cached body carries
`"content":hello` (a Lua string without the JSON quotes), which every server refuses; here it
is `"content":"hello"`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

TIMEOUT_S = 10


def ensure_installed() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: apt-get install wrk (Debian package)")
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )


LUA = r"""tokens = {
TOKENS
}
threads = {
THREADS
}
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  local i = math.random(#tokens)
  local t = tokens[i]
  local thread = ""
  if #threads > 0 then thread = ',"thread_id":"' .. threads[i] .. '"' end
  local body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":' .. CONTENT .. '}]' .. thread .. '}'
  return wrk.format("POST", nil, {["Authorization"] = "Bearer " .. t, ["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\":%d,\"rps\":%.2f,\"p50_ms\":%.3f,\"p99_ms\":%.3f," ..
    "\"err_status\":%d,\"err_timeout\":%d,\"err_other\":%d}\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status, summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write))
end
"""
CACHED = """'"hello"'"""  # a Lua literal holding the JSON string "hello", quotes included
UNCACHED = "'\"hello ' .. math.random(1000000000) .. ' ' .. math.random(1000000000) .. '\"'"


def write_script(path: Path, tokens: list[str], *, cached: bool, threads: list[str] | None = None) -> Path:
    """`threads`: a thread id per token, sent with its requests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens_lua = ",\n".join(f'"{t}"' for t in tokens)
    threads_lua = ",\n".join(f'"{t}"' for t in threads or [])
    script = LUA.replace("TOKENS", tokens_lua).replace("THREADS", threads_lua)
    path.write_text(script.replace("CONTENT", CACHED if cached else UNCACHED))
    return path


def run(url: str, script: Path, *, conns: int, seconds: float) -> dict[str, float | str]:
    """One wrk run: requests, rps, p50_ms, p99_ms and the error counts (non-2xx/3xx answers,
    timeouts, socket errors); `errors` is their sum. No JSON line (wrk failed): requests 0, errors 1."""
    threads = "1" if conns == 1 else "2"
    argv = ["wrk", "-t", threads, "-c", str(conns), "-d", f"{seconds:g}s", "--timeout", f"{TIMEOUT_S}s", "-s"]
    out = subprocess.run([*argv, str(script), url], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("JSON "):
            figures: dict[str, float | str] = json.loads(line[5:])
            figures["errors"] = sum(int(figures[k]) for k in ("err_status", "err_timeout", "err_other"))
            return figures
    return {"requests": 0, "errors": 1, "wrk_failed": out[-300:]}  # a failed run counts as an error
