"""Read a YAML or TOML document together with the line each key and list item starts on, for error messages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

Lines = dict[tuple[Any, ...], int]


class SourceError(ValueError):
    def __init__(self, line: int | None, why: str) -> None:
        super().__init__(why)
        self.line = line
        self.why = why


def load_document(path: Path) -> tuple[dict[str, Any], Lines]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(None, f"cannot read the file: {error}") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return parse_yaml(text)
    if suffix == ".toml":
        return parse_toml(text)
    raise SourceError(None, f"unknown format {suffix or '(no extension)'!r}: name it .yaml, .yml or .toml")


def parse_yaml(text: str) -> tuple[dict[str, Any], Lines]:
    try:
        document = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise SourceError(mark.line + 1 if mark else None, f"not valid YAML: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise SourceError(None, f"not valid YAML: {error}") from None
    if not isinstance(document, dict) or root is None:
        raise SourceError(1, "the file should be a mapping with a 'regulations' list")
    lines: Lines = {}
    _yaml_lines(root, (), lines)
    return document, lines


def _yaml_lines(node: yaml.Node, path: tuple[Any, ...], lines: Lines) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            _yaml_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _yaml_lines(item, child, lines)


_TOML_AT = re.compile(r"at line (\d+)")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def parse_toml(text: str) -> tuple[dict[str, Any], Lines]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _TOML_AT.search(str(error))
        raise SourceError(int(found[1]) if found else None, f"not valid TOML: {error}") from None
    return document, _toml_lines(text)


def _toml_lines(text: str) -> Lines:
    """Lines of tables, array-of-table items and keys; keys inside inline tables fall back to their parent's line."""
    lines: Lines = {}
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = [part.strip().strip("\"'") for part in header[2].split(".")]
            table = _resolve(names, counts)
            if header[1] == "[[":
                counts[table] = counts.get(table, -1) + 1
                table = (*table, counts[table])
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*table, key[1]), number)
    return lines


def _resolve(names: list[str], counts: dict[tuple[Any, ...], int]) -> tuple[Any, ...]:
    """`regulations.steps` inside the current `[[regulations]]` item is ('regulations', i, 'steps')."""
    path: tuple[Any, ...] = ()
    for index, name in enumerate(names):
        path = (*path, name)
        if path in counts and index < len(names) - 1:
            path = (*path, counts[path])
    return path
