"""Token estimation, a self-calibrating estimator, and pair-safe history trimming.

The fixed estimate counts 4 characters per token, like the published package. :class:`TokenEstimator`
starts there and learns each model's real ratio from the prompt-token counts providers report, so the
fold trigger fires near the budget it names instead of wherever a 4-character guess lands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = [
    "CHARS_PER_TOKEN",
    "DOCUMENT_TOKENS",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD_CHARS",
    "TokenEstimator",
    "estimate_message_tokens",
    "estimate_text_tokens",
    "estimate_tokens",
    "message_chars",
    "request_chars",
    "trim_history",
]

CHARS_PER_TOKEN = 4
"""The uncalibrated ratio (what the published package always used)."""

MESSAGE_OVERHEAD_CHARS = 16
"""Per-message framing (role, separators) counted as characters: 4 tokens at the default ratio."""


IMAGE_TOKENS = 1600
"""What one image part counts, whatever its size: about what providers charge for a ~1000x1000 image
(Anthropic ~1600, OpenAI high detail ~765-1100). A data URL's base64 text is never counted."""

DOCUMENT_TOKENS = 3000
"""What one PDF part counts (a few pages of text)."""

_MEDIA_CHARS = {
    "image_url": IMAGE_TOKENS * CHARS_PER_TOKEN,
    "image": IMAGE_TOKENS * CHARS_PER_TOKEN,
    "file": DOCUMENT_TOKENS * CHARS_PER_TOKEN,
    "document": DOCUMENT_TOKENS * CHARS_PER_TOKEN,
}


def _media_chars(content: Any) -> int:
    """The fixed character-equivalent of the content's images and documents."""
    if not isinstance(content, list):
        return 0
    return sum(_MEDIA_CHARS.get(str(part.get("type")), 0) for part in content if isinstance(part, Mapping))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, Mapping) and part.get("type") in _MEDIA_CHARS:
                continue  # counted by _media_chars
            else:
                parts.append(json.dumps(part, ensure_ascii=False, sort_keys=True, default=str))
        return "".join(parts)
    return json.dumps(content, ensure_ascii=False, default=str)


def message_chars(message: Mapping[str, Any]) -> int:
    """Characters one provider-shape message contributes: content, tool calls, name, framing."""
    content = message.get("content")
    size = MESSAGE_OVERHEAD_CHARS + len(_content_text(content)) + _media_chars(content)
    calls = message.get("tool_calls")
    if calls:
        size += len(json.dumps(calls, ensure_ascii=False, separators=(",", ":")))
    name = message.get("name")
    if isinstance(name, str):
        size += len(name)
    return size


def request_chars(
    messages: Iterable[Mapping[str, Any]],
    *,
    system_prompt: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """Characters of a whole request: messages, the system prompt and the tool schemas."""
    total = sum(message_chars(m) for m in messages)
    if system_prompt:
        total += MESSAGE_OVERHEAD_CHARS + len(system_prompt)
    if tools:
        total += len(json.dumps(list(tools), ensure_ascii=False, separators=(",", ":")))
    return total


def estimate_text_tokens(text: str | None) -> int:
    """Tokens in ``text`` at 4 characters per token: 0 for empty text, else at least 1."""
    if not text:
        return 0
    return max(1, len(text) // CHARS_PER_TOKEN)


def estimate_message_tokens(message: Mapping[str, Any]) -> int:
    """Tokens of one message at 4 characters per token (4 tokens of framing included)."""
    return max(1, message_chars(message) // CHARS_PER_TOKEN)


def estimate_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Tokens of a message list at 4 characters per token."""
    return sum(estimate_message_tokens(m) for m in messages)


@dataclass(slots=True)
class _Ratio:
    chars_per_token: float
    samples: int


class TokenEstimator:
    """Estimates tokens per model, calibrating characters-per-token from reported usage.

    Each :meth:`observe` blends ``chars / prompt_tokens`` into the model's ratio with an exponential
    moving average (weight ``alpha``; the first sample is taken as is). A measurement outside
    ``[min_chars_per_token, max_chars_per_token]`` is ignored, so one odd report (a cached prompt,
    a provider counting differently) cannot wreck the estimate. Unknown models use ``default_chars_per_token``.
    The state is a small JSON-able dict (:meth:`to_dict` / :meth:`from_dict`) so it can be stored.
    """

    __slots__ = ("_ratios", "alpha", "default_chars_per_token", "max_chars_per_token", "min_chars_per_token")

    def __init__(
        self,
        *,
        default_chars_per_token: float = float(CHARS_PER_TOKEN),
        alpha: float = 0.3,
        min_chars_per_token: float = 1.0,
        max_chars_per_token: float = 12.0,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"TokenEstimator alpha must be in (0, 1], got {alpha!r}")
        if not 0.0 < min_chars_per_token <= default_chars_per_token <= max_chars_per_token:
            raise ConfigError(
                "TokenEstimator needs 0 < min_chars_per_token <= default_chars_per_token <= max_chars_per_token"
            )
        self.alpha = alpha
        self.default_chars_per_token = float(default_chars_per_token)
        self.min_chars_per_token = float(min_chars_per_token)
        self.max_chars_per_token = float(max_chars_per_token)
        self._ratios: dict[str, _Ratio] = {}

    @staticmethod
    def _key(model: str | None) -> str:
        return model or ""

    def chars_per_token(self, model: str | None = None) -> float:
        """The current ratio for ``model`` (the default until it has been observed)."""
        ratio = self._ratios.get(self._key(model))
        return self.default_chars_per_token if ratio is None else ratio.chars_per_token

    def samples(self, model: str | None = None) -> int:
        ratio = self._ratios.get(self._key(model))
        return 0 if ratio is None else ratio.samples

    def observe(self, model: str | None, *, chars: int, prompt_tokens: int | None) -> bool:
        """Blend one measurement in; returns False (ignored) when it carries no information."""
        if not prompt_tokens or prompt_tokens <= 0 or chars <= 0:
            return False
        measured = chars / prompt_tokens
        if not self.min_chars_per_token <= measured <= self.max_chars_per_token:
            # Not comparable (a cached prompt billed as a few tokens, a fake model's constant usage):
            # clamping it would still drag the average, so it is ignored.
            return False
        key = self._key(model)
        ratio = self._ratios.get(key)
        if ratio is None:
            self._ratios[key] = _Ratio(measured, 1)
        else:
            ratio.chars_per_token = (1.0 - self.alpha) * ratio.chars_per_token + self.alpha * measured
            ratio.samples += 1
        return True

    def observe_request(
        self,
        model: str | None,
        messages: Iterable[Mapping[str, Any]],
        *,
        prompt_tokens: int | None,
        system_prompt: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> bool:
        """:meth:`observe` for a request as sent (messages, system prompt, tools)."""
        chars = request_chars(messages, system_prompt=system_prompt, tools=tools)
        return self.observe(model, chars=chars, prompt_tokens=prompt_tokens)

    def chars_to_tokens(self, chars: int, model: str | None = None) -> int:
        return 0 if chars <= 0 else max(1, math.ceil(chars / self.chars_per_token(model)))

    def estimate_text(self, text: str | None, model: str | None = None) -> int:
        return self.chars_to_tokens(len(text or ""), model)

    def estimate(
        self,
        messages: Iterable[Mapping[str, Any]],
        model: str | None = None,
        *,
        system_prompt: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> int:
        """Estimated prompt tokens of a request for ``model``."""
        return self.chars_to_tokens(request_chars(messages, system_prompt=system_prompt, tools=tools), model)

    def to_dict(self) -> dict[str, Any]:
        """The calibration as plain JSON data (floats round-trip exactly through JSON)."""
        return {
            k: {"chars_per_token": r.chars_per_token, "samples": r.samples}
            for k, r in sorted(self._ratios.items())
        }

    def load_dict(self, data: Mapping[str, Any] | None) -> None:
        """Replace the calibration with one produced by :meth:`to_dict` (bad entries are ignored)."""
        self._ratios.clear()
        for key, value in (data or {}).items():
            if not isinstance(value, Mapping):
                continue
            cpt, samples = value.get("chars_per_token"), value.get("samples")
            if isinstance(cpt, (int, float)) and isinstance(samples, int) and samples > 0:
                bounded = min(self.max_chars_per_token, max(self.min_chars_per_token, float(cpt)))
                self._ratios[str(key)] = _Ratio(bounded, samples)


def _exchanges(messages: Sequence[Mapping[str, Any]]) -> list[range]:
    """Index ranges of user exchanges: a user message and everything up to the next one.

    Messages before the first user message form a leading exchange of their own. Tool results stay
    with the call that precedes them because a call and its results never straddle a user message.
    """
    starts = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    ends = [*starts[1:], len(messages)]
    return [range(a, b) for a, b in zip(starts, ends, strict=True) if b > a]


def trim_history(
    messages: Sequence[Mapping[str, Any]],
    max_tokens: int,
    *,
    keep_system: bool = True,
    keep_last_n: int = 2,
    estimator: TokenEstimator | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Drop the oldest user exchanges until the estimate fits ``max_tokens``.

    An exchange is a user message with every reply, tool call and tool result up to the next user
    message, so a call is never split from its results and a trimmed result always starts with a
    user message (after the leading ``system`` messages, kept when ``keep_system``). The last
    ``keep_last_n`` exchanges are always kept, so the result may still exceed ``max_tokens``; a
    budget of 0 returns ``[]``. Returns a new list of the same dict objects (the input is not
    modified).
    """
    if max_tokens < 0:
        raise ConfigError(f"trim_history max_tokens must be >= 0, got {max_tokens!r}")
    if max_tokens == 0:
        return []

    def size(msg: Mapping[str, Any]) -> int:
        # Characters with a calibrated estimator, fixed-ratio tokens without: both add up per message.
        return message_chars(msg) if estimator is not None else estimate_message_tokens(msg)

    def fits(total: int) -> bool:
        tokens = estimator.chars_to_tokens(total, model) if estimator is not None else total
        return tokens <= max_tokens

    items = [m if isinstance(m, dict) else dict(m) for m in messages]
    head_len = 0
    if keep_system:
        while head_len < len(items) and items[head_len].get("role") == "system":
            head_len += 1
    head, body = items[:head_len], items[head_len:]
    # Results whose call is not in the body cannot be sent; they go first.
    while body and body[0].get("role") == "tool":
        body.pop(0)
    exchanges = _exchanges(body)
    costs = [sum(size(body[j]) for j in ex) for ex in exchanges]
    total = sum(size(m) for m in head) + sum(costs)
    first = 0
    while len(exchanges) - first > max(0, keep_last_n) and not fits(total):
        total -= costs[first]
        first += 1
    return [*head, *(body[j] for ex in exchanges[first:] for j in ex)]
