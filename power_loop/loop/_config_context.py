"""The context axes of ``AgentLoopConfig`` (the published way to turn on context handling).

Setting ``representation`` or ``fold_strategy`` (or memory, notes or fold knobs) on the config opts the
loop into a ``ContextPipeline`` built from them; the axis left unset takes the published default
(verbatim history, one summary call). Nothing set keeps the loop's opt-in default: the verbatim
window, never folded. ``max_tokens`` doubles as the context budget, as published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..context import ContextPipeline

__all__ = [
    "CONTEXT_FIELDS",
    "ContextSource",
    "context_fields_set",
    "pipeline_from_config",
    "same_axes",
    "validate_context_fields",
]

#: Config fields that describe context handling.
CONTEXT_FIELDS = (
    "representation",
    "fold_strategy",
    "fold_timeout_s",
    "memory",
    "memory_budget_tokens",
    "notes_policy",
)


def context_fields_set(config: Any) -> bool:
    """Whether any context field of ``config`` is set."""
    return any(getattr(config, name) is not None for name in CONTEXT_FIELDS)


def validate_context_fields(config: Any) -> None:
    """Raise ``ConfigError`` naming the field and the rule for a bad context field."""
    if not context_fields_set(config):
        return
    # Only configs that use context handling load it.
    from ..context import FoldStrategy, MemoryProvider, NotesPolicy, Representation

    checks: tuple[tuple[str, type, str], ...] = (
        ("representation", Representation, "a Representation (e.g. VerbatimRepresentation())"),
        ("fold_strategy", FoldStrategy, "a FoldStrategy (e.g. LLMSummaryFold())"),
        ("memory", MemoryProvider, "a MemoryProvider"),
        ("notes_policy", NotesPolicy, "a NotesPolicy"),
    )
    for name, kind, rule in checks:
        value = getattr(config, name)
        if value is not None and not isinstance(value, kind):
            raise ConfigError(f"AgentLoopConfig.{name} must be {rule}, got {type(value).__name__}")
    timeout = config.fold_timeout_s
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise ConfigError(f"AgentLoopConfig.fold_timeout_s must be a number > 0 or None, got {timeout!r}")
    budget = config.memory_budget_tokens
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise ConfigError(f"AgentLoopConfig.memory_budget_tokens must be an int >= 0 or None, got {budget!r}")


def pipeline_from_config(config: Any) -> ContextPipeline | None:
    """The pipeline the config's context fields describe, or ``None`` when none is set."""
    if not context_fields_set(config):
        return None
    from ..context import DEFAULT_NOTES_POLICY, ContextPipeline, LLMSummaryFold, VerbatimRepresentation

    axes = config.representation is not None or config.fold_strategy is not None
    fold = config.fold_strategy
    if fold is None and axes and not config.never_fold:
        fold = LLMSummaryFold()  # the published default axis
    return ContextPipeline(
        representation=config.representation or VerbatimRepresentation(),
        fold=fold,
        memory=config.memory,
        notes_policy=config.notes_policy or DEFAULT_NOTES_POLICY,
        context_tokens=config.max_tokens or 8000,
        fold_timeout_s=float(config.fold_timeout_s or 120.0),
        memory_budget_tokens=1500 if config.memory_budget_tokens is None else config.memory_budget_tokens,
    )


def same_axes(pipeline: ContextPipeline, config: Any) -> bool:
    """Whether ``pipeline`` already uses every context object the config sets."""
    pairs = (
        (config.representation, pipeline.representation),
        (config.fold_strategy, pipeline.fold),
        (config.memory, pipeline.memory),
    )
    return all(wanted is None or wanted is used for wanted, used in pairs)


class ContextSource:
    """Where a loop's pipeline comes from: the one passed as ``context=``, else the one its config's
    context fields describe, rebuilt when the config (or one of those fields) is replaced."""

    __slots__ = ("_built", "_key", "explicit")

    def __init__(self, explicit: ContextPipeline | None, config: Any) -> None:
        if explicit is not None and context_fields_set(config) and not same_axes(explicit, config):
            raise ConfigError(
                "context= and the AgentLoopConfig context fields (representation, fold_strategy, memory) "
                "disagree: set them in one place"
            )
        self.explicit = explicit
        self._key: tuple[int, int] | None = None
        self._built: ContextPipeline | None = None

    def current(self, config: Any) -> tuple[ContextPipeline | None, bool]:
        """``(pipeline, fresh)``: ``fresh`` the first time a pipeline is returned (its tools are
        then registered), and whenever it was rebuilt from a changed config."""
        if self.explicit is not None:
            fresh = self._key is None
            self._key = (0, 0)
            return self.explicit, fresh
        key = (id(config), config.context_version)
        if key == self._key:
            return self._built, False
        self._key = key
        self._built = pipeline_from_config(config)
        return self._built, self._built is not None
