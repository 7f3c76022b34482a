"""Value types of the loop: configuration, results, statuses."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import InitVar, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ._config_context import CONTEXT_FIELDS, validate_context_fields
from ._projectors import RuntimeProjector, default_runtime_projectors
from ._steer import StopPolicy

if TYPE_CHECKING:
    from ..context import FoldStrategy, MemoryProvider, NotesPolicy, Representation
    from ..llm import LLMRetryPolicy
    from ..structured import StructuredOutputSpec

__all__ = [
    "AgentLoopConfig",
    "AgentLoopResult",
    "FollowUpQueued",
    "LoopMessage",
    "LoopStatus",
    "StatefulResult",
]

LoopMessage = dict[str, Any]
#: "Keyword not given" for the deprecated config keywords (None has a meaning for them).
_UNSET: Any = object()
LoopStatus = Literal[
    "completed",
    "pending_tools",
    "waiting_for_input",
    "cancelled",
    "hit_round_limit",
    "budget_exceeded",
    "degraded",
    "nothing_to_resume",
]


@dataclass
class AgentLoopConfig:
    """Per-loop settings. Every field has a safe default; invalid values raise `ConfigError`."""

    system_prompt: str | None = None
    max_rounds: int = 24
    temperature: float | None = 0.0
    max_tokens: int | None = 8000
    model: str | None = None
    response_format: dict[str, Any] | None = None
    max_tokens_per_run: int | None = None
    retry_policy: LLMRetryPolicy | None = None
    # New in power_loop: the published loop ran a round's tool calls one after another.
    tool_concurrency: int = 8
    tool_result_max_chars: int = 50_000
    inject_tool_descriptions: bool = True
    tool_catalog_header: str = "# Available Tools"
    # A skills directory: its skills are listed in the system prompt and `load_skill` loads one.
    skills_dir: str | None = None
    # Context handling, the published way (see _config_context): setting any of these opts the loop
    # into a ContextPipeline built from them; all None keeps the verbatim, never-folded window.
    representation: Representation | None = None
    fold_strategy: FoldStrategy | None = None
    fold_timeout_s: float | None = None
    memory: MemoryProvider | None = None
    memory_budget_tokens: int | None = None
    notes_policy: NotesPolicy | None = None
    # Accepted for published configs: projections are computed from the audit log (nothing to
    # migrate), and the store refuses orphan results (nothing to repair).
    migrate_history_on_switch: bool = True
    repair_corrupt_history: bool = False
    # Transient per-round messages (the todo list, ...), appended to each request and never stored.
    runtime_projectors: tuple[RuntimeProjector, ...] = field(default_factory=default_runtime_projectors)
    # Structured output (C13): a JSON Schema, an OpenAI ``json_schema`` response format or a
    # `StructuredOutputSpec`. The final answer is parsed and validated into `StatefulResult.output`.
    output_schema: StructuredOutputSpec | dict[str, Any] | None = None
    # Images older than this many model rounds (assistant turns after them) are replaced in requests
    # by a short placeholder, so long visual sessions stay bounded; None keeps every image.
    image_retention_rounds: int | None = None
    # Steering (``follow_up(mode="steer")``): which tools a steer may cancel, how often a leased send
    # looks for steers queued by other processes.
    stop_policy: StopPolicy = field(default_factory=StopPolicy)
    # The hook audit trail: "metadata" stores every hook decision that changed something (point,
    # handler, decision, round, time), "full" also the new values (redacted); "off" stores nothing.
    record_hook_events: str = "off"
    output_spec: StructuredOutputSpec | None = field(default=None, init=False, repr=False, compare=False)
    # Bumped when a context field (or max_tokens) is re-assigned, so a loop rebuilds its pipeline.
    context_version: int = field(default=0, init=False, repr=False, compare=False)
    # The deprecated 2.x keywords of the published config (see _legacy_keywords); `compactor=None`
    # ("never compact") sets `never_fold`: a pipeline built from the config then folds nothing.
    compactor: InitVar[Any] = _UNSET
    history_projector: InitVar[Any] = _UNSET
    migrate_history_on_projection_switch: InitVar[Any] = _UNSET
    never_fold: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(
        self, compactor: Any, history_projector: Any, migrate_history_on_projection_switch: Any
    ) -> None:
        _legacy_keywords(self, compactor, history_projector, migrate_history_on_projection_switch)
        self.validate()
        object.__setattr__(self, "_ready", True)

    @property
    def projection_representation(self) -> Representation | None:
        """The representation when it is a projection-style one (``kind != "verbatim"``), else None."""
        rep = self.representation
        return rep if rep is not None and getattr(rep, "kind", "verbatim") != "verbatim" else None

    def __setattr__(self, name: str, value: Any) -> None:
        # Re-assigning a field after construction re-validates; a bad value raises and the old one stays.
        if not self.__dict__.get("_ready") or name not in _INIT_FIELDS:
            object.__setattr__(self, name, value)
            return
        old = getattr(self, name)
        object.__setattr__(self, name, value)
        try:
            self.validate()
        except Exception:
            object.__setattr__(self, name, old)
            self.validate()  # restores what validate derives (output_spec)
            raise
        if name in CONTEXT_FIELDS or name == "max_tokens":
            object.__setattr__(self, "context_version", self.context_version + 1)

    def validate(self) -> None:
        if not isinstance(self.max_rounds, int) or self.max_rounds < 1:
            raise ConfigError(f"AgentLoopConfig.max_rounds must be an int >= 1, got {self.max_rounds!r}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens <= 0):
            raise ConfigError(f"AgentLoopConfig.max_tokens must be > 0 or None, got {self.max_tokens!r}")
        for name in ("max_tokens_per_run", "tool_result_max_chars"):  # NaN would pass the range checks
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"AgentLoopConfig.{name} must be an int, got {value!r}")
        t = self.temperature
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
            raise ConfigError(
                f"AgentLoopConfig.temperature must be a finite number, got {self.temperature!r}"
            )
        if self.max_tokens_per_run is not None and self.max_tokens_per_run <= 0:
            raise ConfigError(
                f"AgentLoopConfig.max_tokens_per_run must be > 0 or None, got {self.max_tokens_per_run!r}"
            )
        if not isinstance(self.tool_concurrency, int) or self.tool_concurrency < 1:
            raise ConfigError(
                f"AgentLoopConfig.tool_concurrency must be an int >= 1, got {self.tool_concurrency!r}"
            )
        if self.skills_dir is not None and not isinstance(self.skills_dir, (str, os.PathLike)):
            raise ConfigError(f"AgentLoopConfig.skills_dir must be a path or None, got {self.skills_dir!r}")
        if not isinstance(self.runtime_projectors, (tuple, list)) or not all(
            callable(getattr(p, "project", None)) for p in self.runtime_projectors
        ):
            raise ConfigError(
                "AgentLoopConfig.runtime_projectors must be a tuple of objects with an async "
                f"project(...) method, got {self.runtime_projectors!r}"
            )
        object.__setattr__(self, "runtime_projectors", tuple(self.runtime_projectors))
        validate_context_fields(self)
        if self.tool_result_max_chars < 100:
            raise ConfigError("AgentLoopConfig.tool_result_max_chars must be >= 100")
        rounds = self.image_retention_rounds
        if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1):
            raise ConfigError(
                f"AgentLoopConfig.image_retention_rounds must be an int >= 1 or None, got {rounds!r}"
            )
        if not isinstance(self.stop_policy, StopPolicy):
            raise ConfigError(f"AgentLoopConfig.stop_policy must be a StopPolicy, got {self.stop_policy!r}")
        if self.record_hook_events not in _HOOK_EVENT_MODES:
            raise ConfigError(
                "AgentLoopConfig.record_hook_events must be one of "
                f"{', '.join(repr(m) for m in _HOOK_EVENT_MODES)}, got {self.record_hook_events!r}"
            )
        if self.output_schema is not None and self.response_format is not None:
            raise ConfigError("set AgentLoopConfig.output_schema or response_format, not both")
        self.output_spec = None
        if self.output_schema is not None:
            from ..structured import StructuredOutputSpec  # only loops that ask for it pay for it

            self.output_spec = StructuredOutputSpec.from_any(self.output_schema)

    def session_config(self) -> dict[str, Any]:
        """The subset stored on a new session row (informational; the loop's config wins at run time)."""
        return {"max_rounds": self.max_rounds, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def replace(self, **changes: Any) -> AgentLoopConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        values.update(changes)
        copy = AgentLoopConfig(**values)
        object.__setattr__(copy, "never_fold", self.never_fold)
        return copy


def _legacy_keywords(config: AgentLoopConfig, compactor: Any, projector: Any, migrate: Any) -> None:
    """Map the published config's deprecated 2.x keywords, warning; objects of its 2.x compactor and
    projector classes have no counterpart here and raise ``ConfigError`` naming the replacement."""
    used = [n for n, v in (("compactor", compactor), ("history_projector", projector)) if v is not _UNSET]
    if migrate is not _UNSET:
        used.append("migrate_history_on_projection_switch")
        config.migrate_history_on_switch = bool(migrate)
    if not used:
        return
    warnings.warn(
        f"AgentLoopConfig({', '.join(used)}=...) is deprecated: use representation= / fold_strategy= "
        "(and migrate_history_on_switch=)",
        DeprecationWarning,
        stacklevel=4,
    )
    if compactor is None and config.fold_strategy is None:
        config.never_fold = True  # the published meaning: never compact
    elif compactor not in (_UNSET, None):
        raise ConfigError(
            f"AgentLoopConfig(compactor={type(compactor).__name__}) has no counterpart here: pass "
            "fold_strategy=LLMSummaryFold(...) or AgenticFold(...) (or compactor=None to never fold)"
        )
    if projector not in (_UNSET, None):
        raise ConfigError(
            f"AgentLoopConfig(history_projector={type(projector).__name__}) has no counterpart here: pass "
            "representation=ProjectedRepresentation(...) or VerbatimRepresentation()"
        )


#: What ``AgentLoopConfig.record_hook_events`` accepts.
_HOOK_EVENT_MODES = ("off", "metadata", "full")
_INIT_FIELDS = frozenset(f.name for f in fields(AgentLoopConfig) if f.init)


@dataclass(slots=True)
class StatefulResult:
    """What one `send` (or `resume` / `submit_input`) produced."""

    session_id: str
    status: str
    final_text: str = ""
    rounds: int = 0
    pending_tool_calls: list[dict[str, Any]] = field(default_factory=list)
    pending_interactions: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    tool_calls: int = 0
    # The validated JSON object when `AgentLoopConfig.output_schema` is set (else None).
    output: dict[str, Any] | None = None
    # The agent declined to reply (the `pass_turn` tool): the send ended with no answer.
    passed: bool = False
    pass_reason: str | None = None
    # How many steering inputs (``follow_up(mode="steer")``) this send took in.
    steers: int = 0


@dataclass(slots=True)
class AgentLoopResult:
    """Engine-level result (kept for interface compatibility; `StatefulResult` is what `send` returns)."""

    status: LoopStatus
    final_text: str = ""
    rounds: int = 0
    pending_tool_calls: list[dict[str, Any]] = field(default_factory=list)
    pending_interactions: list[dict[str, Any]] = field(default_factory=list)
    messages: list[LoopMessage] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    tool_calls: int = 0


@dataclass(frozen=True, slots=True)
class FollowUpQueued:
    """Returned by `follow_up()` when a send is in flight: the input is stored and delivered later."""

    session_id: str
    queue_depth: int
    item_id: int = 0
    # From `deliver`: how many items were queued now, how many repeated an id already stored or queued,
    # and the ids of the queued ones.
    accepted: int = 1
    duplicates: int = 0
    accepted_ids: tuple[str, ...] = ()
