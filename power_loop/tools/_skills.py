"""Skills: folders of instructions an agent loads on demand with the ``load_skill`` tool.

A skills directory holds one folder per skill, each with a ``SKILL.md``; the folder name is the skill's
name. An optional front matter block (``---`` lines) gives ``description`` (and any other ``key: value``
fields); without it the first line of text describes the skill. The model sees only the descriptions
(``get_descriptions``) until it asks for a skill by name, so many skills cost few tokens.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ._definition import ToolDefinition
from ._registry import ToolRegistry

__all__ = [
    "LOAD_SKILL_DEFINITION",
    "SKILLS_DIR_ENV",
    "Skill",
    "SkillLoader",
    "get_default_loader",
    "parse_front_matter",
    "register_skill_tools",
]

SKILLS_DIR_ENV = "POWER_LOOP_SKILLS_DIR"
"""Environment variable naming the skills directory when none is passed."""

#: A SKILL.md larger than this is cut (skills are instructions, not data dumps).
MAX_SKILL_CHARS = 200_000

LOAD_SKILL_DEFINITION = ToolDefinition(
    name="load_skill",
    description=(
        "Load the full instructions of a skill by name (see the skills listed in the system prompt) "
        "before doing a task that skill covers."
    ),
    input_schema={
        "type": "object",
        "properties": {"name": {"type": "string", "description": "The skill's name."}},
        "required": ["name"],
        "additionalProperties": False,
    },
)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split ``---``-fenced front matter from a markdown text: ``(fields, body)``.

    Understands the part of YAML skills use (no PyYAML needed): ``key: value`` lines with optional
    quotes, and a value continued on indented lines (``key: >`` / ``key: |`` or a bare ``key:``),
    folded into one line. Anything else is ignored; text without front matter gives ``({}, text)``.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        return {}, text
    fields: dict[str, str] = {}
    key: str | None = None
    for raw in lines[1:end]:
        if key is not None and raw[:1] in (" ", "\t") and raw.strip():
            fields[key] = f"{fields[key]} {raw.strip()}".strip()
            continue
        key = None
        name, sep, value = raw.partition(":")
        if not sep or not name.strip() or name[:1] in (" ", "\t", "#"):
            continue
        name = name.strip()
        value = value.strip()
        fields[name] = "" if value in (">", "|", ">-", "|-") else _unquote(value)
        key = name
    return fields, "\n".join(lines[end + 1 :]).lstrip("\n")


def _first_line(body: str) -> str:
    for line in body.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped
    return ""


@dataclass(frozen=True)
class Skill:
    """One skill: its name (the folder name), description, SKILL.md path, body and front matter."""

    name: str
    description: str
    path: Path
    body: str
    fields: dict[str, str] = field(default_factory=dict)


class SkillLoader:
    """Finds the skills under ``skills_dir`` (default: ``$POWER_LOOP_SKILLS_DIR``; none when unset).

    The directory is scanned on first use and again on :meth:`reload`. A missing directory means no
    skills; a ``skills_dir`` that is a file is a :class:`ConfigError`.
    """

    def __init__(self, skills_dir: str | os.PathLike[str] | None = None) -> None:
        chosen = skills_dir if skills_dir is not None else os.environ.get(SKILLS_DIR_ENV) or None
        self.skills_dir: Path | None = Path(chosen).expanduser().resolve() if chosen is not None else None
        if self.skills_dir is not None and self.skills_dir.exists() and not self.skills_dir.is_dir():
            raise ConfigError(f"skills_dir {str(self.skills_dir)!r} is not a directory")
        self._skills: dict[str, Skill] | None = None

    def __repr__(self) -> str:
        return f"SkillLoader({str(self.skills_dir)!r})"

    def reload(self) -> None:
        """Scan the directory again (skills added, changed or removed since are picked up)."""
        skills: dict[str, Skill] = {}
        root = self.skills_dir
        if root is not None and root.is_dir():
            for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                skill_file = folder / "SKILL.md"
                if not skill_file.is_file():
                    continue
                text = skill_file.read_text(encoding="utf-8", errors="replace")[:MAX_SKILL_CHARS]
                fields, body = parse_front_matter(text)
                description = fields.get("description") or _first_line(body) or "(no description)"
                skills[folder.name] = Skill(folder.name, description, skill_file, body, fields)
        self._skills = skills

    def _all(self) -> dict[str, Skill]:
        if self._skills is None:
            self.reload()
        assert self._skills is not None
        return self._skills

    @property
    def names(self) -> list[str]:
        """The skill names, sorted."""
        return list(self._all())

    def get(self, name: str) -> Skill | None:
        """The skill called ``name``, or ``None``."""
        return self._all().get(name)

    def get_descriptions(self) -> str:
        """One ``- name: description`` line per skill (empty when there are none)."""
        return "\n".join(f"- {s.name}: {s.description}" for s in self._all().values())

    def get_content(self, name: str) -> str:
        """The skill's instructions, wrapped with where it lives; ``ConfigError`` for an unknown name."""
        skill = self.get(name)
        if skill is None:
            raise ConfigError(f"unknown skill {name!r}; available: {', '.join(self.names) or '(none)'}")
        folder = skill.path.parent
        return (
            f'<skill name="{skill.name}" path="{skill.path}">\n'
            "<execution-context>\n"
            f"This skill's folder is {folder}; paths in it are relative to that folder.\n"
            "</execution-context>\n"
            f"{skill.body.rstrip()}\n"
            "</skill>"
        )

    def build_system_prompt_section(self) -> str:
        """A ``# Skills`` section listing the skills, or ``""`` when there are none."""
        descriptions = self.get_descriptions()
        if not descriptions:
            return ""
        return (
            "# Skills\n\nSkills you can use. Load one with `load_skill` before doing a task it covers.\n\n"
            f"{descriptions}"
        )

    def handle_load_skill(self, name: str) -> str:
        """What the ``load_skill`` tool answers: the content, or an ``Error: ...`` line for the model."""
        try:
            return self.get_content(name)
        except ConfigError as exc:
            return f"Error: {exc}"


def get_default_loader(skills_dir: str | os.PathLike[str] | None = None) -> SkillLoader:
    """A loader for ``skills_dir`` (default ``$POWER_LOOP_SKILLS_DIR``).

    A new loader each call: nothing is cached process-wide, so two loops never share skill state.
    """
    return SkillLoader(skills_dir)


def register_skill_tools(
    registry: ToolRegistry,
    *,
    skills_dir: str | os.PathLike[str] | None = None,
    loader: SkillLoader | None = None,
    overwrite: bool = False,
) -> SkillLoader:
    """Register ``load_skill`` on ``registry``; returns the loader it reads (``loader`` or a new one)."""
    chosen = loader if loader is not None else SkillLoader(skills_dir)

    def load_skill(name: str) -> str:
        return chosen.handle_load_skill(name)

    registry.register(LOAD_SKILL_DEFINITION, load_skill, overwrite=overwrite)
    return chosen
