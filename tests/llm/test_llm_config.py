from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from power_loop.errors import ConfigError, MissingDependencyError, ProviderNotAvailable
from power_loop.llm import (
    AnthropicChatConfig,
    EchoLLMService,
    LLMProviderConfig,
    OpenAICompatibleChatConfig,
    create_llm_service_from_config,
    create_llm_service_from_env,
)

SECRET = "sk-very-secret-123"
REAL = {"POWER_LOOP_BASE_URL": "http://h/v1", "POWER_LOOP_API_KEY": SECRET, "POWER_LOOP_MODEL": "m"}


def test_missing_fields_raise_config_error_naming_them() -> None:
    with pytest.raises(ConfigError) as err:
        LLMProviderConfig(base_url="http://h", api_key="", model="")
    msg = str(err.value)
    assert "api_key, model" in msg and "POWER_LOOP_API_KEY" in msg and "base_url," not in msg
    assert isinstance(err.value, ValueError)
    assert err.value.code == "config.invalid"


def test_echo_provider_fills_placeholders() -> None:
    cfg = LLMProviderConfig(base_url="", api_key="", model="", provider=" ECHO ")
    assert (cfg.base_url, cfg.api_key, cfg.model) == ("echo://local", "echo", "echo")
    assert cfg.provider_key == "echo" and cfg.is_ready


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout_s": 0},
        {"max_tokens": 0},
        {"max_retries": -1},
        {"temperature": -0.1},
        {"timeout_s": float("nan")},  # NaN passes every comparison
        {"timeout_s": float("inf")},
        {"temperature": float("nan")},  # would be sent as the invalid JSON token NaN
    ],
)
def test_bad_numbers_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        LLMProviderConfig(base_url="u", api_key="k", model="m", **kwargs)
    with pytest.raises(ConfigError):
        OpenAICompatibleChatConfig(base_url="u", api_key="k", model="m", **kwargs)


def test_repr_hides_api_key() -> None:
    cfg = LLMProviderConfig(base_url="u", api_key=SECRET, model="m")
    for obj in (cfg, cfg.to_openai_compatible(), cfg.to_anthropic()):
        text = repr(obj)
        assert SECRET not in text and "api_key='***'" in text and "model='m'" in text


def test_transport_conversions() -> None:
    cfg = LLMProviderConfig(
        base_url="u",
        api_key="k",
        model="m",
        timeout_s=5,
        max_tokens=7,
        temperature=0.3,
        max_retries=1,
        extra={"request_extra": {"top_k": 2}},
    )
    oa = cfg.to_openai_compatible()
    assert isinstance(oa, OpenAICompatibleChatConfig)
    assert (oa.timeout_s, oa.max_tokens, oa.temperature, oa.max_retries, oa.request_extra) == (
        5,
        7,
        0.3,
        1,
        {"top_k": 2},
    )
    an = cfg.to_anthropic()
    assert isinstance(an, AnthropicChatConfig) and an.is_ready and an.max_tokens == 7
    policy = oa.retry_policy()
    assert policy.max_attempts == 2 and policy.backoff_initial == 0.5 and policy.total_timeout is None
    assert an.retry_policy().max_attempts == 2


def test_from_env_defaults_and_parsing() -> None:
    env = {
        **REAL,
        "POWER_LOOP_TIMEOUT_S": "12.5",
        "POWER_LOOP_MAX_TOKENS": "100",
        "POWER_LOOP_TEMPERATURE": "0.7",
        "POWER_LOOP_MAX_RETRIES": "0",
    }
    cfg = LLMProviderConfig.from_env(env=env)
    assert (cfg.provider, cfg.base_url, cfg.api_key, cfg.model) == ("openai", "http://h/v1", SECRET, "m")
    assert (cfg.timeout_s, cfg.max_tokens, cfg.temperature, cfg.max_retries) == (12.5, 100, 0.7, 0)
    default = LLMProviderConfig.from_env(env=REAL)
    assert (default.timeout_s, default.max_tokens, default.temperature, default.max_retries) == (
        180.0,
        8000,
        0.0,
        3,
    )
    assert default.extra == {}


def test_from_env_fallback_prefix_and_custom_prefixes() -> None:
    env = {
        "POWER_LOOP_MODEL": "",
        "OPENAI_COMPAT_MODEL": "legacy-model",
        "OPENAI_COMPAT_BASE_URL": "http://legacy",
        "POWER_LOOP_BASE_URL": "http://new",
        "OPENAI_COMPAT_API_KEY": "k2",
        "OPENAI_COMPAT_MAX_TOKENS": "42",
    }
    cfg = LLMProviderConfig.from_env(env=env)
    assert (cfg.model, cfg.base_url, cfg.api_key, cfg.max_tokens) == ("legacy-model", "http://new", "k2", 42)
    with pytest.raises(ConfigError, match="model"):
        LLMProviderConfig.from_env(env=env, fallback_prefix=None)
    mine = LLMProviderConfig.from_env(prefix="APP", env={"APP_PROVIDER": "echo"})
    assert mine.provider == "echo"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("POWER_LOOP_TIMEOUT_S", "soon"),
        ("POWER_LOOP_MAX_TOKENS", "1.5"),
        ("POWER_LOOP_TEMPERATURE", "hot"),
        ("POWER_LOOP_MAX_RETRIES", "many"),
        ("OPENAI_COMPAT_MAX_RETRIES", "x"),
        ("POWER_LOOP_TIMEOUT_S", "nan"),
        ("POWER_LOOP_TIMEOUT_S", "inf"),
        ("POWER_LOOP_TEMPERATURE", "NaN"),
    ],
)
def test_from_env_bad_number_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        LLMProviderConfig.from_env(env={**REAL, var: value})
    assert var in str(err.value) and repr(value) in str(err.value)


def test_from_env_echo_sleep_must_be_finite() -> None:
    with pytest.raises(ConfigError, match="POWER_LOOP_ECHO_SLEEP"):
        LLMProviderConfig.from_env(env={"POWER_LOOP_PROVIDER": "echo", "POWER_LOOP_ECHO_SLEEP": "nan"})


def test_from_env_missing_everything_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="base_url, api_key, model"):
        LLMProviderConfig.from_env(env={})


def test_from_env_echo_extras() -> None:
    env = {
        "POWER_LOOP_PROVIDER": "stub",
        "POWER_LOOP_ECHO_REPLY": "pong",
        "POWER_LOOP_ECHO_SLEEP": "0.25",
        "POWER_LOOP_ECHO_PREFIX": "> ",
    }
    cfg = LLMProviderConfig.from_env(env=env)
    assert cfg.extra == {"echo_reply": "pong", "echo_sleep_s": 0.25, "echo_prefix": "> "}
    with pytest.raises(ConfigError, match="POWER_LOOP_ECHO_SLEEP"):
        LLMProviderConfig.from_env(env={"POWER_LOOP_PROVIDER": "echo", "POWER_LOOP_ECHO_SLEEP": "zz"})
    # echo extras are ignored for real providers
    assert LLMProviderConfig.from_env(env={**REAL, "POWER_LOOP_ECHO_REPLY": "x"}).extra == {}


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWER_LOOP_PROVIDER", "echo")
    monkeypatch.setenv("POWER_LOOP_ECHO_REPLY", "from-os")
    svc = create_llm_service_from_env()
    assert isinstance(svc, EchoLLMService) and svc.reply == "from-os"


def test_factory_routes_echo() -> None:
    svc = create_llm_service_from_config(
        LLMProviderConfig(
            base_url="",
            api_key="",
            model="",
            provider="stub",
            extra={"echo_reply": "r", "echo_prefix": "p", "echo_sleep_s": "0.5"},
        )
    )
    assert isinstance(svc, EchoLLMService)
    assert (svc.reply, svc.prefix, svc.sleep_s) == ("r", "p", 0.5)


def _fake_adapter(monkeypatch: pytest.MonkeyPatch, module: str, cls_name: str) -> list[Any]:
    built: list[Any] = []

    class Fake:
        def __init__(self, cfg: Any) -> None:
            built.append(cfg)

    mod = types.ModuleType(module)
    setattr(mod, cls_name, Fake)
    monkeypatch.setitem(sys.modules, module, mod)
    return built


@pytest.mark.parametrize("provider", ["anthropic", "Claude", "dashscope-anthropic"])
def test_factory_routes_anthropic_to_its_adapter(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    built = _fake_adapter(monkeypatch, "power_loop.llm._anthropic", "AnthropicMessagesLLMService")
    create_llm_service_from_config(LLMProviderConfig(base_url="u", api_key="k", model="m", provider=provider))
    assert len(built) == 1 and isinstance(built[0], AnthropicChatConfig) and built[0].model == "m"


@pytest.mark.parametrize("provider", ["openai", "deepseek", "vllm"])
def test_factory_routes_everything_else_to_openai(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    built = _fake_adapter(monkeypatch, "power_loop.llm._openai", "OpenAICompatibleChatLLMService")
    create_llm_service_from_env(env={**REAL, "POWER_LOOP_PROVIDER": provider})
    assert len(built) == 1 and isinstance(built[0], OpenAICompatibleChatConfig)
    assert built[0].base_url == "http://h/v1"


@pytest.mark.parametrize(
    ("provider", "sdk", "extra"),
    [("openai", "openai", "openai"), ("anthropic", "anthropic", "anthropic")],
)
def test_missing_sdk_gives_install_hint(
    monkeypatch: pytest.MonkeyPatch, provider: str, sdk: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, sdk, None)  # makes `import <sdk>` raise ImportError
    cfg = LLMProviderConfig(base_url="u", api_key=SECRET, model="m", provider=provider)
    with pytest.raises(MissingDependencyError) as err:
        create_llm_service_from_config(cfg)
    assert f"pip install {sdk} " in str(err.value) and f"pip install -e '.[{extra}]'" in str(err.value)
    assert "power-loop[" not in str(err.value)
    assert err.value.package == sdk and err.value.extra == extra
    assert isinstance(err.value, ImportError) and SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("provider", "module"),
    [("openai", "power_loop.llm._openai"), ("claude", "power_loop.llm._anthropic")],
)
def test_missing_adapter_is_provider_not_available(
    monkeypatch: pytest.MonkeyPatch, provider: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ProviderNotAvailable, match=module.replace(".", r"\.")) as err:
        create_llm_service_from_config(
            LLMProviderConfig(base_url="u", api_key="k", model="m", provider=provider)
        )
    assert err.value.code == "llm.provider_unavailable"


def test_adapter_without_expected_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "power_loop.llm._openai", types.ModuleType("power_loop.llm._openai"))
    with pytest.raises(ProviderNotAvailable, match="OpenAICompatibleChatLLMService"):
        create_llm_service_from_config(LLMProviderConfig(base_url="u", api_key="k", model="m"))


def test_openai_config_takes_the_published_keywords() -> None:
    from power_loop.llm import ModelCapabilities

    cfg = OpenAICompatibleChatConfig(
        base_url="http://127.0.0.1:8080/v1",
        api_key="k",
        model="m",
        capability_overrides={"vision": False, "supports_parallel_tools": False},
        stream_resume_on_error=False,
        stream_max_restarts=0,
        stream_resume_instruction="continue",
    )
    assert cfg.capabilities is not None
    assert (cfg.capabilities.vision, cfg.capabilities.parallel_tools, cfg.capabilities.tools) == (
        False,
        False,
        True,
    )
    plain = OpenAICompatibleChatConfig(base_url="http://127.0.0.1:8080/v1", api_key="k", model="m")
    assert plain.capabilities is None  # nothing overridden: the defaults apply at run time
    for bad in (
        {"stream_resume_on_error": True},
        {"stream_max_restarts": 2},
        {"capability_overrides": {"warp_drive": True}},
        {"capability_overrides": {"vision": False}, "capabilities": ModelCapabilities()},
    ):
        with pytest.raises(ConfigError):
            OpenAICompatibleChatConfig(base_url="http://127.0.0.1:8080/v1", api_key="k", model="m", **bad)
