"""A run folder is data, not code: what ``resume`` and ``eval`` take from a stored config, and what they refuse.

A checkpoint's config names classes (every ``_target_``) and modules to import (``plugins``). It may come from
someone else, so before anything is imported or built from it:

* every ``_target_`` must name a class registered in gan-bench's registry for that key (``loss._target_`` one of
  the losses, ...), or a class the user names on THIS command line: the same ``KEY._target_=VALUE`` repeated, or a
  class inside a module of ``plugins=[...]`` given on this command line;
* the stored ``plugins`` are imported only when this command line repeats them.

Anything else is one line naming the key, what it names and how to allow it, and nothing runs. ``gan-bench report``
reads run folders as JSON and YAML only and never builds anything.

The same command line may repeat what the run was launched with: :func:`command_changes` compares what each
override composes to with the stored value and accepts what did not change; a real change of a key that defines the
run is refused.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from gan_bench.errors import ConfigError

_MISSING = object()


def select(tree: Any, dotted: str) -> Any:
    """The value at a dotted path of a plain config, or ``_MISSING``."""
    for part in dotted.split(".") if dotted else ():
        if not isinstance(tree, dict) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a plain config as ``{dotted path: value}`` (an empty dict is a leaf)."""
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def migrate(stored: dict) -> dict:
    """A stored config of an earlier version in today's shape: its ``regularizer`` section (before the stabilisers were
    a registered group) becomes the ``stabilizers`` nodes that replaced its keys (the same values: the same run);
    without a ``logger`` section (before the logger group) it logs to TensorBoard, as it did."""
    from gan_bench.stabilizers import REGULARIZER_KEYS

    if "logger" not in stored:  # before the logger group, every run wrote TensorBoard events (and only those)
        stored = {**stored, "logger": {"tensorboard": {"_target_": "gan_bench.loggers.tensorboard.TensorBoard",
                                                       "flush_secs": 30}}}
    if "regularizer" not in stored:
        return stored
    out = {k: v for k, v in stored.items() if k != "regularizer"}
    nodes: dict[str, dict] = {}
    for old, value in (leaves(stored["regularizer"]) if stored["regularizer"] else {}).items():
        if old not in REGULARIZER_KEYS:
            raise ConfigError(f"the stored config does not fit this gan-bench (regularizer.{old} is no key of any "
                              "version)")
        name, key = REGULARIZER_KEYS[old].split(".")
        nodes.setdefault(name, {})[key] = value
    out["stabilizers"] = {**nodes, **(stored.get("stabilizers") or {})}
    return out


def complete(stored: dict) -> dict:
    """A stored config (after :func:`migrate`) with the plain keys added since it was written, at their defaults
    (components as stored)."""
    from omegaconf import OmegaConf

    from gan_bench.config import Config, plain

    try:
        return plain(OmegaConf.merge(OmegaConf.structured(Config), migrate(stored)))
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"the stored config does not fit this gan-bench ({first})") from None


def _key(token: str) -> str:
    return token.lstrip("+~").split("=", 1)[0]


def command_changes(stored: dict, tokens: Sequence[str], composed: dict, compose: Callable[[list[str]], dict],
                    may_change: Callable[[str], bool]) -> tuple[dict[str, Any], list[str]]:
    """What ``tokens`` (overrides, as for a fresh launch) change in ``stored``: ``({path: new value}, [refused
    override keys])``. ``composed`` is the config the tokens compose to. A ``key=value`` override is compared at its
    key; a group choice (``loss=hinge``, ``model/discriminator=x``) leaf by leaf under its node, and an option of the
    global package (``+experiment=NAME``) at the keys it sets: a value equal to the stored one is no change. A group
    choice never changes a resumable key by its defaults (only a key named on the command line does)."""
    changes: dict[str, Any] = {}
    refused: list[str] = []
    base: dict | None = None
    for token in tokens:
        key = _key(token)
        if "=" not in token or token.startswith("~"):
            refused.append(key)
            continue
        path = key.replace("/", ".")
        new = select(composed, path)
        if new is _MISSING:  # an option that writes elsewhere (e.g. +experiment=NAME): the keys it sets
            base = base if base is not None else leaves(compose([]))
            subtree = {k: v for k, v in leaves(compose([token])).items() if base.get(k, _MISSING) != v}
            named = False
        elif "." in key or not isinstance(new, dict):  # a key (train.seed=0, eval.metrics=[fid], plugins=[m])
            subtree, named = {path: new}, True
        else:  # a group's option (loss=hinge, model/discriminator=x): leaf by leaf
            subtree, named = {f"{path}.{k}": v for k, v in leaves(new).items()}, False
        for leaf, value in subtree.items():
            if select(stored, leaf) == value:
                continue
            if not may_change(leaf):
                if key not in refused:
                    refused.append(key)
            elif named:
                changes[leaf] = value
    return changes, refused


def check_trusted(stored: dict, tokens: Sequence[str], composed: dict) -> None:
    """Refuse a stored config that would import or build something the user has not named on this command line."""
    from gan_bench.config import component_groups

    named = {_key(t)[: -len("._target_")]: t.split("=", 1)[1] for t in tokens
             if "=" in t and _key(t).endswith("._target_")}
    given = any(_key(t) == "plugins" for t in tokens)
    plugins = [str(m) for m in (composed.get("plugins") or [])] if given else []
    stored_plugins = [str(m) for m in stored.get("plugins") or []]
    untrusted = [m for m in stored_plugins if m not in plugins]
    if untrusted:
        listed = ",".join(stored_plugins)
        raise ConfigError(f"the stored config imports plugins=[{listed}] (code from whoever made the run folder); a "
                          f"run folder is data, so they were not imported: if you trust them, repeat "
                          f"plugins=[{listed}] on this command line — nothing was run")
    from gan_bench.loggers import LOGGERS
    from gan_bench.stabilizers import STABILIZERS

    sections = {"stabilizers": STABILIZERS, "logger": LOGGERS}  # sections of named nodes, one registry each

    groups = component_groups()
    for leaf, value in leaves(stored).items():
        if not leaf.endswith("._target_") and leaf != "_target_":
            continue
        where = leaf[: -len("._target_")] if leaf != "_target_" else ""
        registry = groups.get(where) or (sections.get(where.split(".")[0]) if where.count(".") == 1 else None)
        if registry is not None and registry.name_of(str(value)) is not None:
            continue
        if named.get(where) == value or any(str(value).startswith(f"{m}.") for m in plugins):
            continue
        what = f"{registry.group} option" if registry is not None else "gan-bench component"
        raise ConfigError(f"the stored config names {leaf}={value}, which is not a registered {what}; a run folder "
                          f"is data, so it was not imported: if you trust it, repeat {leaf}={value} (or plugins=[its "
                          "module]) on this command line — nothing was run")
