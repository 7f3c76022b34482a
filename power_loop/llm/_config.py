"""Provider configuration, environment parsing and the service factory.

The transports (``openai``, ``anthropic``) are optional extras: nothing here imports them until a
service is actually built, and a missing SDK raises :class:`MissingDependencyError` naming the
``pip install`` command.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MissingDependencyError, ProviderNotAvailable
from ._capabilities import ModelCapabilities
from ._echo import EchoLLMService
from ._retry import LLMRetryPolicy

if TYPE_CHECKING:
    from ._types import LLMService

__all__ = [
    "ANTHROPIC_PROVIDERS",
    "AnthropicChatConfig",
    "DEFAULT_PREFIX",
    "ECHO_PROVIDERS",
    "LEGACY_PREFIX",
    "LLMProviderConfig",
    "OpenAICompatibleChatConfig",
    "create_llm_service_from_config",
    "create_llm_service_from_env",
]

DEFAULT_PREFIX = "POWER_LOOP"
LEGACY_PREFIX = "OPENAI_COMPAT"
ECHO_PROVIDERS = frozenset({"echo", "stub"})
ANTHROPIC_PROVIDERS = frozenset({"anthropic", "claude", "dashscope-anthropic"})
_REQUIRED = ("base_url", "api_key", "model")


def _masked_repr(obj: Any) -> str:
    """Dataclass-style repr with the API key hidden (secrets never reach logs)."""
    parts = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name == "api_key":
            parts.append(f"api_key={'***' if value else ''!r}")
        else:
            parts.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def _check_transport_numbers(obj: Any) -> None:
    name = type(obj).__name__
    for field_name in ("timeout_s", "temperature"):  # NaN passes every comparison below; inf is no limit
        value = getattr(obj, field_name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}.{field_name} must be a finite number, got {value}")
    if obj.timeout_s <= 0:
        raise ConfigError(f"{name}.timeout_s must be > 0, got {obj.timeout_s}")
    if obj.max_tokens <= 0:
        raise ConfigError(f"{name}.max_tokens must be > 0, got {obj.max_tokens}")
    if obj.max_retries < 0:
        raise ConfigError(f"{name}.max_retries must be >= 0, got {obj.max_retries}")
    if obj.temperature < 0:
        raise ConfigError(f"{name}.temperature must be >= 0, got {obj.temperature}")


def _check_capabilities(obj: Any) -> None:
    if obj.capabilities is not None and not isinstance(obj.capabilities, ModelCapabilities):
        raise ConfigError(
            f"{type(obj).__name__}.capabilities must be a ModelCapabilities, got {type(obj.capabilities).__name__}"
        )


def _capabilities_from(overrides: Mapping[str, Any], config: OpenAICompatibleChatConfig) -> ModelCapabilities:
    """The published ``capability_overrides`` dict applied over the config's default capabilities."""
    known = {f.name for f in fields(ModelCapabilities)}
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        name = key.lower().removeprefix("supports_")
        if name not in known:
            raise ConfigError(
                f"capability_overrides: unknown capability {key!r}; known: {', '.join(sorted(known))}"
            )
        values[name] = value
    base = config.default_capabilities()
    return ModelCapabilities(**{**{n: getattr(base, n) for n in known}, **values})


def _retry_policy(max_retries: int, base_delay: float) -> LLMRetryPolicy:
    # Each attempt is already bounded by the transport's timeout_s, so no extra total deadline.
    return LLMRetryPolicy(max_attempts=max_retries + 1, backoff_initial=base_delay, total_timeout=None)


class _TransportConfig:
    """What the transport configurations share: validation, readiness, retry policy, masked repr."""

    __slots__ = ()
    base_url: str
    api_key: str
    model: str
    max_retries: int
    retry_base_delay_s: float

    def __post_init__(self) -> None:
        _check_transport_numbers(self)

    @property
    def is_ready(self) -> bool:
        return bool(self.base_url and self.api_key and self.model)

    def retry_policy(self) -> LLMRetryPolicy:
        """The transport's own retry policy: ``max_retries`` retries starting at ``retry_base_delay_s``."""
        return _retry_policy(self.max_retries, self.retry_base_delay_s)

    def __repr__(self) -> str:
        return _masked_repr(self)


@dataclass(slots=True, repr=False)
class OpenAICompatibleChatConfig(_TransportConfig):
    """Settings of the OpenAI-compatible chat-completions transport.

    ``request_extra`` is merged into every request body (vendor-specific switches). ``stream``
    (default true) streams every call; ``stream_usage`` asks for the final usage chunk
    (``stream_options={"include_usage": true}``; turn it off for servers that reject it).
    ``timeout_s`` bounds each request; the transport itself never retries (see ``retry_policy()``).
    ``capabilities`` declares what the model takes (default: :meth:`default_capabilities`).

    The published keywords are accepted: ``capability_overrides`` (a dict of ``ModelCapabilities``
    fields, ``supports_`` prefix allowed) becomes ``capabilities``; the stream-resume options are
    accepted at their defaults only (a dropped stream raises the retryable ``LLMStreamIncomplete``
    and the call is retried instead of resumed).
    """

    base_url: str
    api_key: str
    model: str
    timeout_s: float = 180.0
    max_tokens: int = 8000
    temperature: float = 0.0
    max_retries: int = 3
    retry_base_delay_s: float = 0.5
    request_extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = True
    stream_usage: bool = True
    capabilities: ModelCapabilities | None = None
    stream_resume_on_error: InitVar[bool] = False
    stream_max_restarts: InitVar[int] = 0
    stream_resume_instruction: InitVar[str | None] = None
    capability_overrides: InitVar[Mapping[str, Any] | None] = None

    def __post_init__(
        self,
        stream_resume_on_error: bool,
        stream_max_restarts: int,
        stream_resume_instruction: str | None,
        capability_overrides: Mapping[str, Any] | None,
    ) -> None:
        if stream_resume_on_error or stream_max_restarts:
            raise ConfigError(
                "OpenAICompatibleChatConfig: stream resume (stream_resume_on_error / stream_max_restarts) "
                "is not provided; a dropped stream raises LLMStreamIncomplete, which the retry policy retries"
            )
        if capability_overrides:
            if self.capabilities is not None:
                raise ConfigError(
                    "OpenAICompatibleChatConfig: pass capabilities= or capability_overrides=, not both"
                )
            self.capabilities = _capabilities_from(capability_overrides, self)
        _check_transport_numbers(self)
        _check_capabilities(self)

    def default_capabilities(self) -> ModelCapabilities:
        """What the endpoint is assumed to take when ``capabilities`` is not set: everything but PDF
        documents (only OpenAI's own API takes ``file`` parts) and without prompt caching control."""
        return ModelCapabilities(
            documents="api.openai.com" in self.base_url,
            streaming_usage=self.stream_usage,
            prompt_caching=False,
        )


@dataclass(slots=True, repr=False)
class AnthropicChatConfig(_TransportConfig):
    """Settings of the native Anthropic Messages transport.

    ``base_url`` is the API root without ``/v1`` (a trailing ``/v1`` is tolerated and dropped).
    ``prompt_caching`` (default true) places ``cache_control`` breakpoints on the stable prefix
    (tools, system prompt, history before the newest turn). ``stream`` (default true) streams
    every call. ``temperature`` is sent only when the installed SDK still accepts it.
    ``capabilities`` declares what the model takes (default: :meth:`default_capabilities`).
    """

    base_url: str
    api_key: str
    model: str
    timeout_s: float = 180.0
    max_tokens: int = 8000
    temperature: float = 0.0
    max_retries: int = 3
    retry_base_delay_s: float = 0.5
    prompt_caching: bool = True
    stream: bool = True
    capabilities: ModelCapabilities | None = None

    def __post_init__(self) -> None:
        _check_transport_numbers(self)
        _check_capabilities(self)

    def default_capabilities(self) -> ModelCapabilities:
        """What Claude models take when ``capabilities`` is not set: everything (structured output
        through the adapter's answer tool), prompt caching as configured."""
        return ModelCapabilities(prompt_caching=self.prompt_caching)


@dataclass(slots=True, repr=False)
class LLMProviderConfig:
    """Which provider to talk to and how. ``provider`` is ``openai`` (any OpenAI-compatible endpoint,
    the default), ``anthropic`` (alias ``claude``) or ``echo`` (offline, alias ``stub``).

    ``base_url``, ``api_key`` and ``model`` are required except for ``echo``, which fills placeholders.
    ``extra`` carries provider-specific settings (``echo_reply``, ``echo_prefix``, ``echo_sleep_s``
    for echo; ``request_extra`` and ``stream_usage`` for OpenAI-compatible endpoints;
    ``prompt_caching`` for Anthropic; ``stream`` for both). ``capabilities`` is handed to the
    transport config (``None``: the provider's defaults).
    """

    base_url: str
    api_key: str
    model: str
    provider: str = "openai"
    timeout_s: float = 180.0
    max_tokens: int = 8000
    temperature: float = 0.0
    max_retries: int = 3
    extra: dict[str, Any] = field(default_factory=dict)
    capabilities: ModelCapabilities | None = None

    def __post_init__(self) -> None:
        if self.provider_key in ECHO_PROVIDERS:
            self.base_url = self.base_url or "echo://local"
            self.api_key = self.api_key or "echo"
            self.model = self.model or "echo"
        missing = [name for name in _REQUIRED if not getattr(self, name)]
        if missing:
            hint = ", ".join(f"{DEFAULT_PREFIX}_{name.upper()}" for name in missing)
            raise ConfigError(
                f"LLMProviderConfig missing required field(s): {', '.join(missing)} "
                f"(from the environment: set {hint}, or {DEFAULT_PREFIX}_PROVIDER=echo for the offline model)"
            )
        _check_transport_numbers(self)

    @property
    def provider_key(self) -> str:
        """``provider`` lower-cased and stripped: the routing key."""
        return self.provider.strip().lower()

    @property
    def is_ready(self) -> bool:
        return bool(self.base_url and self.api_key and self.model)

    def to_openai_compatible(self) -> OpenAICompatibleChatConfig:
        return OpenAICompatibleChatConfig(
            base_url=self.base_url,
            api_key=self.api_key,
            model=self.model,
            timeout_s=self.timeout_s,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            max_retries=self.max_retries,
            request_extra=dict(self.extra.get("request_extra") or {}),
            stream=bool(self.extra.get("stream", True)),
            stream_usage=bool(self.extra.get("stream_usage", True)),
            capabilities=self.capabilities,
        )

    def to_anthropic(self) -> AnthropicChatConfig:
        return AnthropicChatConfig(
            base_url=self.base_url,
            api_key=self.api_key,
            model=self.model,
            timeout_s=self.timeout_s,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            max_retries=self.max_retries,
            prompt_caching=bool(self.extra.get("prompt_caching", True)),
            stream=bool(self.extra.get("stream", True)),
            capabilities=self.capabilities,
        )

    @classmethod
    def from_env(
        cls,
        *,
        prefix: str = DEFAULT_PREFIX,
        fallback_prefix: str | None = LEGACY_PREFIX,
        env: Mapping[str, str] | None = None,
    ) -> LLMProviderConfig:
        """Read ``{prefix}_PROVIDER``, ``_BASE_URL``, ``_API_KEY``, ``_MODEL``, ``_TIMEOUT_S``,
        ``_MAX_TOKENS``, ``_TEMPERATURE``, ``_MAX_RETRIES`` (and ``_ECHO_REPLY``, ``_ECHO_PREFIX``,
        ``_ECHO_SLEEP`` for echo). A missing or empty value falls back to ``{fallback_prefix}_X``.
        A malformed number raises :class:`ConfigError` naming the variable.
        """
        source: Mapping[str, str] = os.environ if env is None else env

        def read(suffix: str, *, strip: bool = True) -> tuple[str, str]:
            # Free text (echo reply/prefix) keeps its whitespace; everything else is trimmed.
            name = f"{prefix}_{suffix}"
            value = source.get(name) or ""
            if not value.strip() and fallback_prefix:
                alt = f"{fallback_prefix}_{suffix}"
                alt_value = source.get(alt) or ""
                if alt_value.strip():
                    name, value = alt, alt_value
            return name, value.strip() if strip else value

        def number(suffix: str, default: str, kind: type[int] | type[float]) -> Any:
            name, raw = read(suffix)
            try:
                value = kind(raw or default)
            except ValueError:
                value = None
            if value is None or (isinstance(value, float) and not math.isfinite(value)):  # "nan", "inf" parse
                expected = "an integer" if kind is int else "a finite number"
                raise ConfigError(f"environment variable {name} must be {expected}, got {raw!r}") from None
            return value

        provider = read("PROVIDER")[1] or "openai"
        extra: dict[str, Any] = {}
        if provider.strip().lower() in ECHO_PROVIDERS:
            reply_name, reply = read("ECHO_REPLY", strip=False)
            if reply_name in source:
                extra["echo_reply"] = reply
            prefix_value = read("ECHO_PREFIX", strip=False)[1]
            if prefix_value:
                extra["echo_prefix"] = prefix_value
            if read("ECHO_SLEEP")[1]:
                extra["echo_sleep_s"] = number("ECHO_SLEEP", "0", float)
        return cls(
            base_url=read("BASE_URL")[1],
            api_key=read("API_KEY")[1],
            model=read("MODEL")[1],
            provider=provider,
            timeout_s=number("TIMEOUT_S", "180", float),
            max_tokens=number("MAX_TOKENS", "8000", int),
            temperature=number("TEMPERATURE", "0", float),
            max_retries=number("MAX_RETRIES", "3", int),
            extra=extra,
        )

    def __repr__(self) -> str:
        return _masked_repr(self)


def _require_sdk(module: str, extra: str, feature: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module, extra, feature) from None


def _adapter_class(module_name: str, class_name: str, provider: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ProviderNotAvailable(
            f"provider {provider!r}: the transport module {module_name} is not available in this build"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ProviderNotAvailable(f"provider {provider!r}: {module_name} does not define {class_name}")
    return cls


def create_llm_service_from_config(cfg: LLMProviderConfig) -> LLMService:
    """Build the service ``cfg.provider`` names: echo/stub, anthropic/claude, else OpenAI-compatible."""
    key = cfg.provider_key
    if key in ECHO_PROVIDERS:
        sleep_s = cfg.extra.get("echo_sleep_s", 0.0)
        return EchoLLMService(
            reply=cfg.extra.get("echo_reply"),
            prefix=str(cfg.extra.get("echo_prefix", "")),
            sleep_s=float(sleep_s),
            capabilities=cfg.capabilities,
        )
    if key in ANTHROPIC_PROVIDERS:
        # Check the SDK first so a missing extra yields the install hint, not an adapter error.
        _require_sdk("anthropic", "anthropic", f"the {cfg.provider!r} provider")
        cls = _adapter_class("power_loop.llm._anthropic", "AnthropicMessagesLLMService", cfg.provider)
        service: LLMService = cls(cfg.to_anthropic())
        return service
    _require_sdk("openai", "openai", f"the {cfg.provider!r} provider (OpenAI-compatible)")
    cls = _adapter_class("power_loop.llm._openai", "OpenAICompatibleChatLLMService", cfg.provider)
    service = cls(cfg.to_openai_compatible())
    return service


def create_llm_service_from_env(
    *,
    prefix: str = DEFAULT_PREFIX,
    fallback_prefix: str | None = LEGACY_PREFIX,
    env: Mapping[str, str] | None = None,
) -> LLMService:
    """``create_llm_service_from_config(LLMProviderConfig.from_env(...))``."""
    return create_llm_service_from_config(
        LLMProviderConfig.from_env(prefix=prefix, fallback_prefix=fallback_prefix, env=env)
    )
