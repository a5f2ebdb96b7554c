"""What a chat request may carry beyond text: function tools and the calls a model makes to
them, a response format (JSON, or JSON matching a schema), and images. Shaped after OpenAI's
chat completions, which both the OpenAI and the Gemini providers are mapped from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from common.contracts.envelope import Contract
from common.contracts.patterns import VISIBLE

# OpenAI's rule for function names, which Gemini's (letters, digits, `_ . : -`, 64 at most) also admits.
FUNCTION_NAME = r"^[A-Za-z0-9_-]{1,64}$"
MAX_TOOLS = 32
# A call's id may carry what a provider needs back with it (Gemini's thought signature, see
# chat.providers.gemini), so it is longer than a plain id needs.
MAX_CALL_ID = 16_384
MAX_IMAGES = 8
# A data URL's payload in whole base64 quads, so that every URL the pattern admits decodes.
IMAGE_URL = (
    r"^(https://"
    + VISIBLE
    + r"+|data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]{4})+([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$"
)
MAX_IMAGE_URL = 200_000
ImageDetail = Literal["auto", "low", "high"]
ToolMode = Literal["none", "auto", "required"]


class FunctionTool(Contract):
    """A function the model may call."""

    name: str = Field(pattern=FUNCTION_NAME, description="The function's name.", examples=["get_weather"])
    description: str | None = Field(None, max_length=4096, description="What it does, for the model.")
    parameters: dict[str, Any] | None = Field(
        None, description="JSON Schema of its arguments (an object); none: it takes no arguments."
    )
    strict: bool | None = Field(None, description="Ask the provider to keep the arguments to the schema exactly.")


class ToolCall(Contract):
    """A call the model asks the caller to make; its result comes back as a `tool` message with this id."""

    id: str = Field(min_length=1, max_length=MAX_CALL_ID, description="Id of the call.", examples=["call_3f2a"])
    name: str = Field(pattern=FUNCTION_NAME, description="The function called.")
    arguments: str = Field(max_length=32_000, description="The arguments, as JSON text.", examples=['{"city":"Oslo"}'])


class ToolChoice(Contract):
    """Whether the model may, must or must not call a tool, or which one it must call."""

    mode: ToolMode = Field(
        "auto", description="`none`: answer in text; `auto`: the model decides; `required`: call one."
    )
    function: str | None = Field(None, pattern=FUNCTION_NAME, description="Call this function (implies `required`).")


class ResponseFormat(Contract):
    """The form the answer's text must take."""

    type: Literal["text", "json_object", "json_schema"] = Field(
        description="`json_object`: any JSON object; `json_schema`: JSON matching `json_schema`."
    )
    name: str | None = Field(None, pattern=FUNCTION_NAME, description="The schema's name (json_schema).")
    description: str | None = Field(None, max_length=4096, description="What the schema is for (json_schema).")
    json_schema: dict[str, Any] | None = Field(None, description="The JSON Schema the answer must match.")
    strict: bool | None = Field(None, description="Ask the provider to keep to the schema exactly.")


class ImageInput(Contract):
    """An image the model is shown: an https URL or a base64 data URL."""

    url: str = Field(max_length=MAX_IMAGE_URL, pattern=IMAGE_URL, description="https or data:image/...;base64 URL.")
    detail: ImageDetail = Field("auto", description="OpenAI's detail level; `low` keeps its token count fixed.")
