"""The simulator's state (`Simulator`) and the ASGI app that serves every provider from it.

Layout of the app (each provider under its own prefix, so paths never clash):

- `/openai/v1/...`   OpenAI         -> `OpenAI(base_url="http://HOST:PORT/openai/v1")`
- `/gemini/v1/...`   Gemini         -> `genai.Client(http_options=HttpOptions(base_url="http://HOST:PORT/gemini"))`
- `/replicate/v1/...` Replicate     -> `replicate.Client(base_url="http://HOST:PORT/replicate")`
- `/cloudinary/v1_1/...` Cloudinary -> `CLOUDINARY_URL=cloudinary://KEY:SECRET@CLOUD?upload_prefix=http://HOST:PORT/cloudinary`
- `/_sim/...`        control API: faults, call counters, stored state, reset (see `control.py`)

Every provider API call goes through `Simulator.enter`, which counts it, adds the configured latency and
applies the next queued fault (see `faults.py`). Files the simulator serves (generated PNGs, uploaded
assets) are neither counted nor faulted.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.simulator import cloudinary, control, embeddings, gemini, openai, replicate, text
from tests.simulator.calls import CallLog
from tests.simulator.faults import Fault, FaultBook
from tests.simulator.wire import ErrorReply, malformed

if TYPE_CHECKING:
    from tests.simulator.cloudinary import Asset
    from tests.simulator.replicate import Prediction


class Simulator:
    """Everything the simulated providers remember, plus the knobs tests turn.

    Safe to use from the test thread while the server runs in another thread.
    """

    def __init__(
        self,
        *,
        stream_delay_s: float = 0.02,
        starting_s: float = 0.1,
        processing_s: float = 0.5,
        cloudinary_cloud: str = "sim-cloud",
        cloudinary_key: str = "sim-key",
        cloudinary_secret: str = "sim-secret",
        fetch_timeout_s: float = 10.0,
    ) -> None:
        self.stream_delay_s = stream_delay_s
        self.starting_s = starting_s
        self.processing_s = processing_s
        self.cloudinary_cloud = cloudinary_cloud
        self.cloudinary_key = cloudinary_key
        self.cloudinary_secret = cloudinary_secret
        self.fetch_timeout_s = fetch_timeout_s
        self.faults = FaultBook()
        self.calls = CallLog()
        self.lock = threading.RLock()
        self.files: dict[str, bytes] = {}
        self.predictions: dict[str, Prediction] = {}
        self.assets: dict[str, Asset] = {}
        self._generation = 0
        self.stopping = False
        # A prediction's output URL is the model's to choose: when set, predictions that succeed from
        # now on name this URL (`{id}` = the prediction's id) instead of their file here.
        self.output_url: str | None = None

    # -- knobs -----------------------------------------------------------------------------------------

    def add_fault(self, provider: str, **spec: Any) -> None:
        """Same as `POST /_sim/faults` with `{"provider": provider, **spec}`; ValueError when not understood."""
        self.faults.add({"provider": provider, **spec})

    def reset(self) -> None:
        """Forget faults, settings, counters and stored state; end any hanging call."""
        self.faults.reset()
        self.calls.reset()
        with self.lock:
            self.files.clear()
            self.predictions.clear()
            self.assets.clear()
            self.output_url = None
            self._generation += 1

    def stop(self) -> None:
        """End hanging calls now and for good (the server is going away)."""
        self.stopping = True
        with self.lock:
            self._generation += 1

    def stream_delay(self, provider: str) -> float:
        configured = self.faults.settings(provider).stream_delay_ms
        return self.stream_delay_s if configured is None else configured / 1000

    def prediction_time(self) -> float:
        configured = self.faults.settings("replicate").processing_s
        return self.processing_s if configured is None else configured

    # -- inspection ------------------------------------------------------------------------------------

    def count(self, provider: str | None = None, endpoint: str | None = None) -> int:
        return self.calls.count(provider, endpoint)

    def cloudinary_public_ids(self) -> list[str]:
        with self.lock:
            return sorted(self.assets)

    def prediction_list(self) -> list[dict[str, Any]]:
        """Every Replicate prediction, as the API would show it now."""
        with self.lock:
            predictions = list(self.predictions.values())
        for prediction in predictions:
            prediction.advance(self)
        return [p.to_json() for p in predictions]

    # -- used by the provider modules ------------------------------------------------------------------

    async def enter(
        self,
        request: Request,
        provider: str,
        endpoint: str,
        *,
        error: ErrorReply,
        model: str | None = None,
        stream: bool = False,
    ) -> Response | None:
        """Count a provider call, add latency, apply a fault. A reply means: send it instead of answering."""
        body = await request.body()  # read it now, so a hang can watch `receive` for the disconnect
        entry = self.calls.record(provider, endpoint, request.method, request.url.path, model)
        request.state.sim_call = entry
        settings = self.faults.settings(provider)
        latency = settings.latency_ms
        if settings.latency_ms_per_1k_tokens:
            latency += settings.latency_ms_per_1k_tokens * text.count_tokens(body.decode(errors="replace")) / 1000
        if latency:
            await asyncio.sleep(latency / 1000)
        fault = self.faults.take(provider, endpoint)
        if fault is None:
            return None
        entry["fault"] = _describe(fault)
        if fault.hang:
            entry["client_disconnected"] = await self._hang(request, fault.hang_s)
            return error(fault.status or 504, fault.message or "Simulated hang ended without an answer.")
        if fault.status is not None:
            reply = error(fault.status, fault.message or f"Simulated {provider} fault ({fault.status}).")
            if fault.retry_after is not None:
                reply.headers["retry-after"] = f"{fault.retry_after:g}"
            return reply
        return malformed(stream=stream)

    def take_prediction_failure(self) -> Fault | None:
        return self.faults.take("replicate", "predictions.create", prediction=True)

    async def _hang(self, request: Request, seconds: float) -> bool:
        """Hold for `seconds`, or until the client goes away (True) or the simulator is reset or stopped."""
        generation = self._generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and generation == self._generation and not self.stopping:
            if await request.is_disconnected():
                return True
            await asyncio.sleep(0.05)
        return False


def _describe(fault: Fault) -> str:
    if fault.hang:
        return "hang"
    if fault.status is not None:
        return f"status {fault.status}"
    return "malformed"


class _RecordStatus:
    """Writes the reply status into the call-log entry of the request, once the reply starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry = scope.get("state", {}).get("sim_call")
                if entry is not None:
                    entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, send_and_record)


def create_app(sim: Simulator) -> Starlette:
    """The ASGI app serving all four providers and the `/_sim` control API from `sim`."""

    async def index(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "simulator": "providers",
                "mounts": ["/openai/v1", "/gemini", "/replicate", "/cloudinary", "/_sim"],
            }
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Mount("/openai", routes=[*embeddings.openai_routes(sim), *openai.routes(sim)]),
            Mount("/gemini", routes=[*embeddings.gemini_routes(sim), *gemini.routes(sim)]),
            Mount("/replicate", routes=replicate.routes(sim)),
            Mount("/cloudinary", routes=cloudinary.routes(sim)),
            Mount("/_sim", routes=control.routes(sim)),
        ],
        middleware=[Middleware(_RecordStatus)],
    )
    app.state.sim = sim
    return app
