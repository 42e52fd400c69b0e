"""A strict parser of the Prometheus text exposition format (0.0.4), for the e2e tests.

parse(text) returns {(name, frozenset(labels.items())): value} and {family: type}, and raises
ValueError naming the line for anything a scraper could choke on or a convention we keep:
every line a HELP, TYPE or sample; HELP and TYPE once per family and before its samples;
valid metric and label names, label values quoted and escaped, no label twice, no series
twice; values that are floats (or +Inf, -Inf, NaN); counters named *_total and never
negative; histograms with buckets in increasing le order, cumulative counts that never
decrease, a last le="+Inf" bucket equal to _count, and _sum and _count present.
"""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE = re.compile(rf"^({NAME})(\{{(.*)\}})? (\S+)$")
LABEL_PAIR = re.compile(rf'({LABEL})="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_labels(s, where):
    labels = {}
    pos = 0
    while pos < len(s):
        m = LABEL_PAIR.match(s, pos)
        if not m:
            raise ValueError(f"{where}: bad label set {{{s}}}")
        k, v = m.group(1), m.group(2)
        if k in labels:
            raise ValueError(f"{where}: label {k} twice")
        labels[k] = v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        pos = m.end()
    return labels


def parse_value(s, where):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(s)
    except ValueError:
        raise ValueError(f"{where}: bad value {s!r}") from None


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)]
    return None


def parse(text):
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    samples, types, helps, seen_samples = {}, {}, set(), set()
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "sum": v, "count": v}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n} ({line!r})"
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                raise ValueError(f"{where}: bad HELP")
            if parts[2] in helps:
                raise ValueError(f"{where}: HELP twice")
            if parts[2] in seen_samples:
                raise ValueError(f"{where}: HELP after samples")
            helps.add(parts[2])
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or not re.fullmatch(NAME, parts[2]) or parts[3] not in TYPES:
                raise ValueError(f"{where}: bad TYPE")
            if parts[2] in types:
                raise ValueError(f"{where}: TYPE twice")
            if parts[2] in seen_samples:
                raise ValueError(f"{where}: TYPE after samples")
            if parts[3] == "counter" and not parts[2].endswith("_total"):
                raise ValueError(f"{where}: a counter not named *_total")
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#") or not line:
            raise ValueError(f"{where}: not a HELP, TYPE or sample line")
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"{where}: not a sample")
        name, labels = m.group(1), parse_labels(m.group(3) or "", where)
        value = parse_value(m.group(4), where)
        fam = family_of(name, types)
        if fam is None:
            raise ValueError(f"{where}: sample of a family without TYPE")
        if fam not in helps:
            raise ValueError(f"{where}: sample of a family without HELP")
        seen_samples.add(fam)
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise ValueError(f"{where}: series twice")
        samples[key] = value
        if types[fam] == "counter" and not value >= 0:
            raise ValueError(f"{where}: negative counter")
        if types[fam] == "histogram":
            rest = frozenset((k, v) for k, v in labels.items() if k != "le")
            h = hist.setdefault((fam, rest), {"buckets": []})
            if name.endswith("_bucket"):
                if "le" not in labels:
                    raise ValueError(f"{where}: bucket without le")
                h["buckets"].append((parse_value(labels["le"], where), value, where))
            elif name.endswith("_sum"):
                h["sum"] = value
            elif name.endswith("_count"):
                h["count"] = value
            else:
                raise ValueError(f"{where}: a histogram's sample must be _bucket, _sum or _count")
    for (fam, labels), h in hist.items():
        what = f"histogram {fam}{dict(labels)}"
        if "sum" not in h or "count" not in h or not h["buckets"]:
            raise ValueError(f"{what}: needs buckets, _sum and _count")
        les = [b[0] for b in h["buckets"]]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ValueError(f"{what}: buckets not in increasing le order")
        if not math.isinf(les[-1]):
            raise ValueError(f"{what}: no le=\"+Inf\" bucket")
        counts = [b[1] for b in h["buckets"]]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ValueError(f"{what}: bucket counts decrease")
        if counts[-1] != h["count"]:
            raise ValueError(f"{what}: +Inf bucket {counts[-1]} != _count {h['count']}")
    return samples, types


def value(samples, metric, **labels):
    return samples.get((metric, frozenset(labels.items())))
