"""How each value was measured: one protocol per comparison.

An evaluation entry records, per metric, how its values were measured (``entry["protocol"][metric]``: sample
counts, split, weights' sha256 ...); the record's top-level ``protocol`` is the run's training protocol. The report
compares values measured one way only: by default, each run's values measured as its training measured them;
with ``--protocol KEY=VALUE``, the values whose protocol has KEY = VALUE.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gan_bench.errors import GanBenchError
from gan_bench.report.collect import RunRecord, natural_key, warn

#: protocol keys naming files of one machine (or copies of facts their sha256 fixes): not part of a protocol's identity
LOCAL_KEYS = frozenset({"classifier", "weights_file", "real_stats", "real_features", "source", "test_accuracy"})
#: the result keys of the built-in metrics (as gan_bench.metrics.registry declares them; a test checks they agree):
#: a key's metric found without importing torch. A plug-in's key is found as the protocol's metric of that name, or
#: as the only metric of its entry's protocol; else the entry's whole protocol is its protocol.
BUILT_IN_KEYS = {"fid": ("fid",), "is": ("is_mean", "is_std"), "kid": ("kid_mean", "kid_std"),
                 "pr": ("precision", "recall"), "fid_classifier": ("fid_classifier",),
                 "modes": ("modes_covered", "high_quality", "mode_kl"),
                 "modes_stacked": ("modes_covered_stacked", "mode_kl_stacked")}
NOT_RESULTS = frozenset({"iteration", "wall_clock_s"})
EVAL_COMMAND = "gan-bench eval"

Protocol = dict[str, dict[str, Any]]  # metric name -> the identity of its protocol (LOCAL_KEYS left out)


def result_keys(entry: dict[str, Any]) -> list[str]:
    """The result keys of an evaluation entry: those holding a number (or null: a metric that was unavailable);
    ``iteration``, ``wall_clock_s`` and the text and objects (generator, protocol, source, checkpoint) are not."""
    return [k for k, v in entry.items() if k not in NOT_RESULTS
            and (v is None or isinstance(v, (int, float)) and not isinstance(v, bool))]


def metric_of(key: str, protocols: Any) -> str | None:
    """The metric of ``protocols`` (``{metric: {...}}``) that produced result key ``key``; None if unknown."""
    if not isinstance(protocols, dict):
        return None
    if key in protocols:
        return key
    found = next((m for m in protocols if key in BUILT_IN_KEYS.get(m, ())), None)
    if found is None and len(protocols) == 1:
        found = next(iter(protocols))
    return found


def identity(protocols: dict[str, Any], metric: str | None) -> Protocol:
    """``{metric: its protocol without LOCAL_KEYS}`` of ``metric``, or of every metric when ``metric`` is None (a
    key whose metric is unknown: the whole protocol of its entry says how it was measured)."""
    chosen = {metric: protocols.get(metric)} if metric is not None else protocols
    return {m: {k: v for k, v in p.items() if k not in LOCAL_KEYS} if isinstance(p, dict) else {"": p}
            for m, p in chosen.items()}


def canonical(value: Any) -> str:
    """``value`` as comparable text: JSON, keys sorted, whole floats as integers; a string that reads as JSON (or as
    Python's True / False / None) as that value, so that "2000" is 2000 and "true" is True."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            value = {"true": True, "false": False, "none": None}.get(text.lower(), text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(value, default=str)


def show(value: Any) -> str:
    """A protocol value as a message shows it."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def training_protocols(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The run's training protocol ``{metric: {...}}``: the record's top-level ``protocol``. An older ``gan-bench
    eval`` (entries with a ``source``, without a ``protocol``) merged its own protocol into that one, so for such a
    record: the protocol of the training's own newest entry that records one, else None (unknown)."""
    evals = metrics.get("eval", [])
    top = metrics.get("protocol")
    if any("source" in e and "protocol" not in e for e in evals):
        own = [e["protocol"] for e in evals if "source" not in e and isinstance(e.get("protocol"), dict)]
        return own[-1] if own else None
    return top if isinstance(top, dict) else None


def measured(metrics: dict[str, Any], entry: dict[str, Any], key: str,
             training: dict[str, Any] | None = None) -> Protocol | None:
    """How ``entry``'s value of ``key`` was measured: its own protocol's identity; for an entry without one that
    training wrote (older gan-bench), the run's training protocol (``training``, default: from ``metrics``; ``{}``:
    none known); None when unknown."""
    own = entry.get("protocol")
    if isinstance(own, dict):
        return identity(own, metric_of(key, own))
    if "source" in entry:
        return None
    training = training_protocols(metrics) if training is None else training
    return identity(training, metric_of(key, training)) if isinstance(training, dict) and training else None


@dataclass
class LeftOut:
    """One value that the report does not compare, and why."""

    run: Path
    entry: int  # its index in the run's ``eval`` list
    generator: str | None
    key: str
    metric: str  # the metric's name (the key when its metric is unknown)
    reason: str  # e.g. "n_fake=2000, the run's training protocol has n_fake=10000; select it with ..."


@dataclass
class Selection:
    """Which values the report compares: ``protocol`` (the ``--protocol`` KEY -> VALUE; empty: each run's training
    protocol), the values left out, and the result keys the runs had before."""

    protocol: dict[str, str]
    left_out: list[LeftOut]
    evaluated: set[str]
    generators: set[Any] = field(default_factory=set)  # the generators the runs' entries name, before
    protocols: dict[int, dict[str, Protocol | None]] = field(default_factory=dict, repr=False)

    def measured(self, entry: dict[str, Any], key: str) -> Protocol | None:
        """How a kept value (an entry of the selected records) was measured; None when unknown."""
        return self.protocols.get(id(entry), {}).get(key)

    def describe(self) -> str:
        if not self.protocol:
            return "values measured as each run's training measured them"
        return "values whose protocol has " + ", ".join(f"{k}={v}" for k, v in self.protocol.items())


_ABSENT = object()  # a key one of two protocols does not have


def _differences(got: Protocol, ref: Protocol) -> list[tuple[str, str, Any, Any]]:
    """``(metric, key, value in got, value in ref)`` where the two differ (``_ABSENT`` where one has no value)."""
    out = []
    for m in [*got, *(m for m in ref if m not in got)]:
        a, b = got.get(m), ref.get(m)
        if a is None or b is None:
            out.append((m, "", a, b))
            continue
        for k in [*a, *(k for k in b if k not in a)]:
            va, vb = a.get(k, _ABSENT), b.get(k, _ABSENT)
            if va is _ABSENT or vb is _ABSENT or canonical(va) != canonical(vb):
                out.append((m, k, va, vb))
    return out


def _setting(key: str, value: Any) -> str:
    return f"no {key}" if value is _ABSENT else f"{key}={show(value)}"


def _mismatch(got: Protocol, ref: Protocol, whose: str) -> str:
    """``n_fake=2000, the run's training protocol has n_fake=10000; select it with --protocol n_fake=2000``."""
    diffs = _differences(got, ref)
    settings = [(m, k, a, b) for m, k, a, b in diffs if k]
    if not settings:
        return f"its protocol records the metrics {', '.join(got)}, {whose} {', '.join(ref) or 'none'}"
    several = len({m for m, *_ in settings}) > 1
    name = (lambda m, k: f"{m}.{k}") if several else (lambda m, k: k)
    shown = settings[:3]
    more = f" (and {len(settings) - 3} more)" if len(settings) > 3 else ""
    text = (f"{', '.join(_setting(name(m, k), a) for m, k, a, _ in shown)}{more}, "
            f"{whose} has {', '.join(_setting(name(m, k), b) for m, k, _, b in shown)}")
    picks = [f"--protocol {k}={show(a)}" for _, k, a, _ in shown if a is not _ABSENT and is_scalar(a)
             and " " not in show(a)]
    return text + (f"; select it with {' '.join(dict.fromkeys(picks))}" if picks else "")


def _parse_selectors(selectors: dict[str, str], candidates: list[tuple]) -> None:
    """An error for a ``--protocol`` KEY that no value's protocol has; a warning for a VALUE that none has."""
    for key, value in selectors.items():
        values = {canonical(sub[key]): show(sub[key]) for c in candidates if c[4] is not None
                  for sub in c[4].values() if key in sub}
        if values and canonical(value) not in values:
            warn(f"--protocol {key}={value}: no evaluation was measured so (their {key}: "
                 f"{', '.join(sorted(values.values(), key=natural_key))})")
        if values:
            continue
        if key in LOCAL_KEYS:
            raise GanBenchError(f"--protocol {key}={value}: {key} names a file on one machine and is not part of a "
                                "protocol's identity; select by its sha256 (weights_sha256, classifier_sha256) instead")
        keys = sorted({k for c in candidates if c[4] is not None for sub in c[4].values() for k in sub})
        raise GanBenchError(f"--protocol {key}={value}: no evaluation's protocol has {key} "
                            f"(their keys: {', '.join(keys) or 'none recorded'})")


def _selected(p: Protocol | None, applicable: list[tuple[str, str]], unrecorded: str | None) -> str | None:
    """Why a value measured as ``p`` is left out by the ``--protocol`` selectors ``applicable``; None: it is kept."""
    asked = " ".join(f"--protocol {k}={v}" for k, v in applicable)
    if p is None:
        return f"{unrecorded or 'no recorded protocol'}, so not selectable with {asked}"
    for key, value in applicable:
        subs = [sub for sub in p.values() if key in sub]
        if not subs:
            return f"its protocol has no {key}, which {asked} asks for"
        wrong = [sub[key] for sub in subs if canonical(sub[key]) != canonical(value)]
        if wrong:
            return f"{key}={show(wrong[0])}, not {value} as {asked} asks"
    return None


def _candidates(runs: Sequence[RunRecord], trainings: list) -> tuple[list[tuple], set[str], dict]:
    """Every value of every run: (run index, entry index, key, metric name or None, protocol or None, kind), the
    keys evaluated, and per (run, key) its first value's own protocol."""
    candidates, evaluated, first = [], set(), {}
    for r, run in enumerate(runs):
        for i, entry in enumerate(run.metrics.get("eval", [])):
            for key in result_keys(entry):
                evaluated.add(key)
                if entry[key] is None:
                    continue
                own = entry.get("protocol")
                kind = "own" if isinstance(own, dict) else "unrecorded" if "source" in entry else "training"
                metric = metric_of(key, own if kind == "own" else trainings[r])
                p = measured(run.metrics, entry, key, trainings[r] if trainings[r] is not None else {})
                if kind == "own":
                    first.setdefault((r, key), p)
                candidates.append((r, i, key, metric, p, kind))
    return candidates, evaluated, first


def select_protocol(runs: Sequence[RunRecord], selectors: dict[str, str] | None = None
                    ) -> tuple[list[RunRecord], Selection]:
    """Copies of ``runs`` whose evaluation entries hold only the values measured under one protocol, and what was
    left out and why (the records themselves are not changed).

    Default (no ``selectors``): per run and result key, the values measured as the run's training measured that
    metric (:func:`training_protocols`; for a metric its training did not evaluate, as the run's first evaluation of
    it with a recorded protocol); an entry without a ``protocol`` counts as the training's when it has no ``source``
    (written by training, older gan-bench) and is left out when it has one (appended by an older ``gan-bench eval``
    without a record of how). With ``selectors`` (KEY -> VALUE): for every result key whose values' protocols have
    KEY somewhere, the values whose protocol has KEY = VALUE (compared as :func:`canonical` text) for every one of
    its metrics that has KEY; the other result keys as by default. An error for a KEY that no protocol has."""
    selectors = dict(selectors or {})
    trainings = [training_protocols(run.metrics) for run in runs]
    candidates, evaluated, first = _candidates(runs, trainings)
    if selectors:
        _parse_selectors(selectors, candidates)
    having = {(c[2], k) for c in candidates if c[4] is not None for sub in c[4].values() for k in sub}
    applicable = {key: [(k, v) for k, v in selectors.items() if (key, k) in having]
                  for key in {c[2] for c in candidates}}

    def reference(r: int, key: str, metric: str | None) -> tuple[Protocol | None, str]:
        """How run ``r``'s values of ``key`` are to have been measured by default, and whose protocol that is."""
        training = trainings[r]
        if training and (metric is None or metric in training):
            return identity(training, metric), "the run's training protocol"
        if training is not None:
            name = metric or key
            return first.get((r, key)), f"the run's first {name} evaluation (its training did not evaluate {name})"
        return None, "the run's training protocol"

    drop: dict[tuple[int, int], list[str]] = {}
    kept: dict[tuple[int, int], dict[str, Protocol | None]] = {}
    left_out = []
    for r, i, key, metric, p, kind in candidates:
        entry = runs[r].metrics["eval"][i]
        name = metric or key
        unrecorded = (f"appended by `{entry['source']}` without a record of how it was measured (an older "
                      f"{EVAL_COMMAND})" if kind == "unrecorded" else None)
        why = None
        if applicable[key]:
            why = _selected(p, applicable[key], unrecorded)
        elif kind == "unrecorded":
            why = unrecorded
        elif kind == "own":
            ref, whose = reference(r, key, metric)
            if ref is None and "source" in entry:
                why = (f"the run's training protocol is not recorded, so this value appended by `{entry['source']}` "
                       "cannot be compared with it")
            elif ref is not None and canonical(p) != canonical(ref):
                why = _mismatch(p, ref, whose)
        if why is None:
            kept.setdefault((r, i), {})[key] = p
        else:
            drop.setdefault((r, i), []).append(key)
            left_out.append(LeftOut(runs[r].path, i, entry.get("generator"), key, name, why))
    out, protocols = [], {}
    for r, run in enumerate(runs):
        evals = []
        for i, entry in enumerate(run.metrics.get("eval", [])):
            copy = {k: v for k, v in entry.items() if k not in drop.get((r, i), ())}
            if (r, i) in drop and not result_keys(copy):
                continue  # nothing of it is compared
            evals.append(copy)
            protocols[id(copy)] = kept.get((r, i), {})
        metrics = {**run.metrics, "eval": evals} if "eval" in run.metrics else run.metrics
        out.append(RunRecord(run.path, run.overrides, metrics))
    generators = {e.get("generator") for run in runs for e in run.metrics.get("eval", [])}
    return out, Selection(selectors, left_out, evaluated, generators, protocols)
