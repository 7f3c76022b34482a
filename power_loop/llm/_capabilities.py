"""What a model can do: :class:`ModelCapabilities`, read from a service, declared on a provider
config, or found out by :func:`probe_capabilities`.

The loop reads a service's ``capabilities`` attribute before every call (a duck-typed service without
one gets :data:`DEFAULT_CAPABILITIES`, which assumes everything) and adapts the request: no tools for
a model without tool support, no ``response_format`` for one without structured output (the answer
tool takes its place), and a :class:`~power_loop.errors.ModelCapabilityError` for an image or a PDF
the model cannot read, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import ConfigError, ModelCapabilityError
from ._types import LLMRequest

__all__ = [
    "DEFAULT_CAPABILITIES",
    "ModelCapabilities",
    "capabilities_of",
    "check_capabilities",
    "content_needs",
    "probe_capabilities",
]


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """What one model accepts. Every flag defaults to the permissive value, so declaring only what a
    model lacks is enough: ``ModelCapabilities(vision=False)``.

    ``tools``: function tools may be offered; ``parallel_tools``: several calls per answer;
    ``vision``: image parts; ``documents``: PDF parts; ``structured_output``: a ``response_format``
    is honoured (otherwise the loop forces an answer tool, or only asks in text without tools);
    ``streaming_usage``: streams end with a usage report; ``prompt_caching``: the provider caches
    the stable prefix; ``tool_streaming``: requests with tools may be streamed (the OpenAI-compatible
    adapter learns ``False`` for servers that send empty streams); ``max_context``: the context
    window in tokens, ``None`` when unknown.
    """

    tools: bool = True
    parallel_tools: bool = True
    vision: bool = True
    documents: bool = True
    structured_output: bool = True
    streaming_usage: bool = True
    prompt_caching: bool = False
    tool_streaming: bool = True
    max_context: int | None = None

    def __post_init__(self) -> None:
        if self.max_context is not None and (
            isinstance(self.max_context, bool)
            or not isinstance(self.max_context, int)
            or self.max_context <= 0
        ):
            raise ConfigError(
                f"ModelCapabilities.max_context must be a positive int, got {self.max_context!r}"
            )

    def with_(self, **changes: Any) -> ModelCapabilities:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_CAPABILITIES = ModelCapabilities()
"""What the loop assumes of a service that does not say: everything."""


def capabilities_of(llm: Any) -> ModelCapabilities:
    """``llm.capabilities`` when it is a :class:`ModelCapabilities`, else :data:`DEFAULT_CAPABILITIES`."""
    caps = getattr(llm, "capabilities", None)
    return caps if isinstance(caps, ModelCapabilities) else DEFAULT_CAPABILITIES


# --------------------------------------------------------------------------------- content check

_IMAGE_PARTS = frozenset({"image_url", "image", "input_image"})
_DOCUMENT_PARTS = frozenset({"file", "document", "input_file"})


def _parts(messages: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    yield part


def content_needs(messages: Iterable[Mapping[str, Any]]) -> set[str]:
    """The capabilities the messages' content parts need: a subset of ``{"vision", "documents"}``."""
    needs: set[str] = set()
    for part in _parts(messages):
        kind = part.get("type")
        if kind in _IMAGE_PARTS:
            needs.add("vision")
        elif kind in _DOCUMENT_PARTS:
            needs.add("documents")
    return needs


def check_capabilities(
    caps: ModelCapabilities, messages: Iterable[Mapping[str, Any]], *, model: str = ""
) -> None:
    """Raise :class:`ModelCapabilityError` when ``messages`` carry an image or a document ``caps``
    cannot take."""
    if caps.vision and caps.documents:
        return  # nothing to refuse: no need to look through the window (the common case)
    needs = content_needs(messages)
    name = f"model {model!r}" if model else "the model"
    if "vision" in needs and not caps.vision:
        raise ModelCapabilityError(
            f"{name} cannot read images (ModelCapabilities.vision is False); remove the image parts "
            "or use a vision model",
            capability="vision",
        )
    if "documents" in needs and not caps.documents:
        raise ModelCapabilityError(
            f"{name} cannot read documents (ModelCapabilities.documents is False); send the text instead",
            capability="documents",
        )


# ------------------------------------------------------------------------------------ probing

# A 1x1 transparent PNG: the smallest image every vision model accepts.
_PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Answer the probe.",
        "parameters": {"type": "object", "properties": {}},
    },
}
_PROBE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "probe", "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
}


def _rejected(exc: BaseException) -> bool:
    """Whether an error is the server refusing the request's shape (not auth, rate or network)."""
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    return status in (400, 404, 415, 422)


async def _accepts(llm: Any, request: LLMRequest) -> bool | None:
    try:
        await llm.complete(request)
    except Exception as exc:
        return False if _rejected(exc) else None
    return True


async def probe_capabilities(
    llm: Any,
    *,
    checks: Iterable[str] = ("tools", "vision", "structured_output"),
) -> ModelCapabilities:
    """Find out what ``llm`` accepts with one tiny request per check (``tools``, ``vision``,
    ``documents`` is not probed: there is no universal tiny PDF), starting from what it declares.

    A request the server refuses as malformed (400/404/415/422) turns the flag off, an accepted one
    turns it on, anything else (auth, rate limit, network) leaves it as declared. The result is
    returned, not stored: pass it as ``capabilities=`` of the provider config.
    """
    caps = capabilities_of(llm)
    user = [{"role": "user", "content": "Reply with: ok"}]
    requests = {
        "tools": LLMRequest(messages=user, tools=[_PROBE_TOOL], tool_choice="auto", max_tokens=16),
        "vision": LLMRequest(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Reply with: ok"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{_PIXEL}"}},
                    ],
                }
            ],
            max_tokens=16,
        ),
        "structured_output": LLMRequest(messages=user, response_format=_PROBE_FORMAT, max_tokens=32),
    }
    changes: dict[str, bool] = {}
    for check in checks:
        request = requests.get(check)
        if request is None:
            raise ConfigError(f"unknown capability check {check!r}; known: {', '.join(requests)}")
        verdict = await _accepts(llm, request)
        if verdict is not None:
            changes[check] = verdict
    return caps.with_(**changes)
