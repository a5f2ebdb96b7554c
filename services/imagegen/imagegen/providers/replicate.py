"""Images from Replicate through its official SDK: create a prediction, poll it with a
doubling wait, fetch the output file (only from the delivery hosts: `fetch.py`).

`REPLICATE_API_TOKEN` and `REPLICATE_BASE_URL` configure it (the SDK's own variables; the
base URL lets tests and the offline set-up point it at a simulator). The model is any
Replicate model name, `owner/name` (an official model) or `owner/name:version`.

Deadlines are the runner's business (it wraps `generate` and calls `cancel`); here, a
prediction we stop following for any other reason (repeated poll failures) is canceled too,
so it does not run on at Replicate's expense.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from replicate.client import Client as ReplicateClient
from replicate.exceptions import ReplicateError
from replicate.prediction import Prediction

from common.errors import UpstreamFailed
from imagegen.jobs import poll_delays
from imagegen.providers.base import (
    ASPECT_RATIOS,
    GeneratedImage,
    GenerationRequest,
    OnStarted,
    OnStatus,
    inspect_image,
)
from imagegen.providers.delivery import DeliveryPolicy
from imagegen.providers.fetch import OutputFetcher

log = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed", "canceled")
POLL_FAILURES_TOLERATED = 3


class ReplicateProvider:
    name = "replicate"
    default_model = "black-forest-labs/flux-schnell"

    def __init__(
        self,
        *,
        api_token: str,
        base_url: str | None,
        timeout_s: float,
        poll_initial_s: float,
        poll_max_s: float,
        max_bytes: int,
        delivery: DeliveryPolicy,
    ) -> None:
        # The replicate Client has no close(): it gets a transport we own and close ourselves.
        self._transport = httpx.AsyncHTTPTransport()
        self._client = ReplicateClient(
            api_token=api_token, base_url=base_url, timeout=httpx.Timeout(timeout_s), transport=self._transport
        )
        self._files = OutputFetcher(policy=delivery, timeout_s=timeout_s, max_bytes=max_bytes)
        self._poll = (poll_initial_s, poll_max_s)
        self._timeout_s = timeout_s

    async def aclose(self) -> None:
        await self._files.aclose()
        await self._transport.aclose()

    async def generate(
        self, request: GenerationRequest, *, resume: str | None, on_started: OnStarted, on_status: OnStatus
    ) -> GeneratedImage:
        try:
            if resume:
                prediction = await self._client.predictions.async_get(resume)
            else:
                prediction = await self._create(request)
                await on_started(prediction.id)
        except ReplicateError as exc:
            raise UpstreamFailed(
                f"Replicate refused the prediction: {_describe(exc)}", provider_status=exc.status
            ) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise UpstreamFailed("Replicate did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailed("Replicate could not be reached") from exc
        await on_status(prediction.status)
        prediction = await self._follow(prediction, on_status)
        if prediction.status == "failed":
            raise UpstreamFailed(f"the model failed: {prediction.error or 'no reason given'}", prediction=prediction.id)
        if prediction.status == "canceled":
            raise UpstreamFailed("the prediction was canceled at Replicate", prediction=prediction.id)
        return inspect_image(await self._files.fetch(_first_output(prediction.output)))

    async def cancel(self, ref: str) -> None:
        try:
            await self._client.predictions.async_cancel(ref)
        except (ReplicateError, httpx.HTTPError):
            log.warning("canceling a prediction failed", extra={"prediction": ref}, exc_info=True)

    async def _create(self, request: GenerationRequest) -> Prediction:
        model_input: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": ASPECT_RATIOS[request.size],
            "num_outputs": 1,
            "output_format": "png",
        }
        model, _, version = request.model.partition(":")
        # The SDK sends a create with no timeout at all (unless it asks Replicate to wait):
        # bound it here. A create cut short may still have started a prediction we cannot name.
        async with asyncio.timeout(self._timeout_s):
            if version:
                return await self._client.predictions.async_create(version=version, input=model_input)
            return await self._client.models.predictions.async_create(model=model, input=model_input)

    async def _follow(self, prediction: Prediction, on_status: OnStatus) -> Prediction:
        """Poll until the prediction is finished, waiting longer each time."""
        failures = 0
        status = prediction.status
        for delay in poll_delays(*self._poll):
            if prediction.status in FINISHED:
                return prediction
            await asyncio.sleep(delay)
            try:
                await prediction.async_reload()
                failures = 0
            except (ReplicateError, httpx.HTTPError) as exc:
                failures += 1
                log.warning("polling a prediction failed", extra={"prediction": prediction.id, "error": repr(exc)})
                if failures >= POLL_FAILURES_TOLERATED:
                    await self.cancel(prediction.id)
                    raise UpstreamFailed("Replicate stopped answering about the prediction") from exc
                continue
            if prediction.status != status:
                status = prediction.status
                await on_status(status)
        raise AssertionError("unreachable")  # pragma: no cover


def _first_output(output: Any) -> str:
    """The first file of an output: a URL string, a FileOutput, or a list of either."""
    if isinstance(output, list | tuple):
        output = output[0] if output else None
    url = getattr(output, "url", output)
    if not isinstance(url, str) or not url:
        raise UpstreamFailed("the prediction succeeded without an output file")
    return url


def _describe(exc: ReplicateError) -> str:
    return str(exc.detail or exc.title or exc.status or "unknown error")[:300]
