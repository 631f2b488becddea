"""The rule a public event's schema change must follow, as a check on two JSON Schemas.

Within one major version, every event a producer writes must still be read by consumers built
against the released schema, and events already stored must still be read by new consumers
(streams are replayed). So, compared with the released schema, a change is *breaking* when it:

- removes a field (a rename is a removal plus an addition),
- changes a field's type (including its format, its item type or the members of a union),
- makes a field required that was optional, or adds a required field.

Adding an optional field is compatible (a minor version). A breaking change is allowed only
with a new major version, whose released schema starts afresh.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# Keywords that document a schema without changing what it accepts.
_DOCUMENTATION = frozenset({"title", "description", "examples"})


def breaking_changes(released: Schema, current: Schema) -> list[str]:
    """What in ``current`` breaks consumers of ``released``; empty when compatible."""
    problems: list[str] = []
    _compare(
        released, current, "", released.get("$defs", {}), current.get("$defs", {}), problems
    )
    return problems


def same_contract(released: Schema, current: Schema) -> bool:
    """Whether the two schemas accept the same events (documentation aside)."""
    return _undocumented(released) == _undocumented(current)


def _compare(old: Schema, new: Schema, path: str, old_defs: Schema, new_defs: Schema,
             problems: list[str]) -> None:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    old_kind, new_kind = _kind(old, old_defs), _kind(new, new_defs)
    where = path or "the payload"
    if old_kind != new_kind:
        problems.append(f"{where}: type changed from {_show(old_kind)} to {_show(new_kind)}")
        return
    if old_kind == "object":
        old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
        for name, schema in old_fields.items():
            field = f"{path}.{name}" if path else name
            if name not in new_fields:
                problems.append(f"{field}: removed")
            else:
                _compare(schema, new_fields[name], field, old_defs, new_defs, problems)
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            field = f"{path}.{name}" if path else name
            state = "made required" if name in old_fields else "added as required"
            problems.append(f"{field}: {state}")
        old_values, new_values = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_values, dict) and isinstance(new_values, dict):
            _compare(old_values, new_values, f"{path}{{}}", old_defs, new_defs, problems)
    elif old_kind == "array":
        _compare(old.get("items", {}), new.get("items", {}), f"{path}[]", old_defs, new_defs,
                 problems)
    elif isinstance(old_kind, tuple) and old_kind[0] == "anyOf":
        for old_branch, new_branch in zip(old["anyOf"], new["anyOf"], strict=True):
            _compare(old_branch, new_branch, path, old_defs, new_defs, problems)


def _resolve(schema: Schema, defs: Schema) -> Schema:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return _resolve(defs[ref.rsplit("/", 1)[-1]], defs)


def _kind(schema: Schema, defs: Schema) -> object:
    """What kind of value a schema accepts, before looking inside objects and arrays."""
    if "anyOf" in schema:
        return ("anyOf", *(_kind(_resolve(branch, defs), defs) for branch in schema["anyOf"]))
    if "enum" in schema:
        return ("enum", *sorted(map(str, schema["enum"])))
    if "const" in schema:
        return ("const", str(schema["const"]))
    kind = schema.get("type", "any")
    if "format" in schema:
        return (kind, schema["format"])
    return kind


def _show(kind: object) -> str:
    if isinstance(kind, tuple):
        if kind[0] == "anyOf":
            return " | ".join(_show(member) for member in kind[1:])
        return f"{kind[0]} ({', '.join(map(str, kind[1:]))})"
    return str(kind)


def _undocumented(schema: object) -> object:
    if isinstance(schema, list):
        return [_undocumented(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, object] = {}
    for key, value in schema.items():
        if key in _DOCUMENTATION:
            continue
        if key in ("properties", "$defs"):  # names of fields and models, not keywords
            kept[key] = {name: _undocumented(sub) for name, sub in value.items()}
        else:
            kept[key] = _undocumented(value)
    return kept
