"""Property test: our compiled validator agrees with the reference ``jsonschema`` Draft 2020-12 validator."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from power_loop.tools import compile_schema

KEYS = ["a", "b", "c", "ab"]

json_scalars = st.one_of(
    st.sampled_from([0, 1, 1.0, 0.0, True, False]),  # the int/float/bool equality traps
    st.none(),
    st.booleans(),
    st.integers(min_value=-4, max_value=8),
    st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, -2.5, 3.0, 1e20]),
    st.text(alphabet="ab0 é", max_size=4),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from([*KEYS, "zz", "b9"]), inner, max_size=4),
    ),
    max_leaves=10,
)

TYPE_NAMES = ["null", "boolean", "integer", "number", "string", "array", "object"]
numbers = st.one_of(st.integers(min_value=-3, max_value=6), st.sampled_from([0.5, 1.5, 2.0, -1.0]))
small_counts = st.integers(min_value=0, max_value=3)

TYPES = st.one_of(
    st.sampled_from(TYPE_NAMES),
    st.lists(st.sampled_from(TYPE_NAMES), min_size=1, max_size=3, unique=True),
)
LEAF_KEYWORDS: dict[str, st.SearchStrategy[Any]] = {
    "enum": st.lists(json_scalars, max_size=4),
    "const": json_scalars,
    "minimum": numbers,
    "maximum": numbers,
    "exclusiveMinimum": numbers,
    "exclusiveMaximum": numbers,
    "multipleOf": st.sampled_from([1, 2, 3, 0.5, 1.5]),
    "minLength": small_counts,
    "maxLength": small_counts,
    "pattern": st.sampled_from(["^a", "b$", "[0-9]", "^$", "é"]),
    "minItems": small_counts,
    "maxItems": small_counts,
    "uniqueItems": st.booleans(),
    "minProperties": small_counts,
    "maxProperties": small_counts,
    "required": st.lists(st.sampled_from(KEYS), max_size=3, unique=True),
    "format": st.sampled_from(["email", "date-time"]),
    "description": st.text(max_size=3),
}


def _pick(keywords: dict[str, st.SearchStrategy[Any]], max_size: int) -> st.SearchStrategy[dict[str, Any]]:
    """A schema with a few (not all) keywords, so that generated schemas stay satisfiable."""
    # permutations, not lists of sampled_from: the latter strongly favours the first names
    chosen = st.tuples(st.permutations(sorted(keywords)), st.integers(0, max_size)).map(
        lambda pk: pk[0][: pk[1]]
    )
    return chosen.flatmap(lambda names: st.fixed_dictionaries({n: keywords[n] for n in names}))


# "type" is the most important keyword, so it is drawn on its own (about half the schemas have one)
leaf_schema = st.builds(
    lambda typed, rest: {**typed, **rest},
    st.one_of(st.just({}), st.fixed_dictionaries({"type": TYPES})),
    _pick(LEAF_KEYWORDS, 3),
)


def _extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    structural = {
        "properties": st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
        "additionalProperties": inner,
        "patternProperties": st.dictionaries(st.sampled_from(["^a", "9$"]), inner, max_size=2),
        "items": inner,
        "prefixItems": st.lists(inner, max_size=2),
        "anyOf": st.lists(inner, min_size=1, max_size=3),
        "oneOf": st.lists(inner, min_size=1, max_size=3),
        "allOf": st.lists(inner, min_size=1, max_size=2),
        "not": inner,
        "$ref": st.just("#/$defs/d"),
    }
    return st.builds(lambda base, extra: {**base, **extra}, leaf_schema, _pick(structural, 2))


schemas = st.recursive(st.one_of(st.booleans(), leaf_schema), _extend, max_leaves=8)
rooted_schemas = st.one_of(
    st.booleans(),
    st.builds(lambda body, definition: {**body, "$defs": {"d": definition}}, _extend(schemas), leaf_schema),
    leaf_schema,
)


# Every generated schema is also checked against these values, which sit on the classic traps
# (bool vs integer, 1 vs 1.0, empty containers, duplicates, unicode lengths).
PROBES: list[Any] = [
    0,
    1,
    1.0,
    2.5,
    -3,
    True,
    False,
    None,
    "",
    "a",
    "ab",
    "é9",
    [],
    [1, 1.0],
    [True, 1],
    ["a", 2],
    {},
    {"a": 1},
    {"a": "b", "b": None},
    {"ab": [1], "b9": {}},
    1e20,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schema=rooted_schemas, instances=st.lists(st.one_of(json_scalars, json_values), min_size=1, max_size=6)
)
def test_verdict_matches_jsonschema(schema: Any, instances: list[Any]) -> None:
    ours = compile_schema(schema)
    reference = jsonschema.Draft202012Validator(schema)
    for instance in [*PROBES, *instances]:
        problems = ours(instance)
        assert (not problems) == reference.is_valid(instance), (schema, instance, problems)
        for problem in problems:
            assert problem.startswith("$")
