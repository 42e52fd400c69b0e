#!/usr/bin/env python3
"""Checks and normalises anvilctl output for the golden tests (test-output-golden.sh).

align FILE: every table in FILE (a header line of upper-case column names, then rows) has
  its columns aligned as kubectl prints them: each cell starts at its header's column, cells
  are separated by at least two spaces. Tree decoration lines (phase: ...) are skipped.
normalise: stdin to stdout with what changes from run to run replaced: uids, timestamps,
  ages, resourceVersions, the random suffixes of generated names; runs of spaces inside a
  line become two (alignment is checked separately, on the raw output).
"""
import re
import sys

HEADER = re.compile(r"^ *(?:[A-Z][A-Z0-9-]*(?: [A-Z][A-Z0-9-]*)*)(?:  +[A-Z][A-Z0-9-]*(?: [A-Z][A-Z0-9-]*)*)+$")
DESCRIBE_HEADER = re.compile(r"^ *(?:Type|NAME)  +.*$")


def columns(header):
    return [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]


def align(path):
    lines = open(path).read().split("\n")
    bad = []
    i = 0
    while i < len(lines):
        h = lines[i]
        if not (HEADER.match(h) or DESCRIBE_HEADER.match(h)):
            i += 1
            continue
        cols = columns(h)
        i += 1
        while i < len(lines) and lines[i].strip():
            row = lines[i]
            # describe cluster's detail lines under a machine are not table rows.
            if re.match(r"^[ │]*  +(phase|last error|on the host|\|)", row):
                i += 1
                continue
            # The table ends where the indentation or a "Section:" line says so.
            if not row.startswith(" " * cols[0]) or re.match(r"^[A-Z][A-Za-z ]+:", row):
                break
            for n, p in enumerate(cols[1:], 1):
                if len(row) <= p:
                    break
                end = cols[n + 1] if n + 1 < len(cols) else len(row)
                if row[p - 1] != " " or row[p - 2] != " ":
                    bad.append(f"{path}:{i + 1}: column {n} does not start at {p}: {row!r}")
                    break
                if row[p] == " " and row[p:end - 2].strip():
                    bad.append(f"{path}:{i + 1}: column {n} is not at {p}: {row!r}")
                    break
            i += 1
    for b in bad:
        print(b, file=sys.stderr)
    return 1 if bad else 0


def normalise(text):
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uid>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
    text = re.sub(r'(resourceVersion: )"\d+"', r"\1<rv>", text)
    text = re.sub(r"(Resource Version: +)\d+", r"\1<rv>", text)
    text = re.sub(r'(\\"resourceVersion\\":)\\"\d+\\"', r"\1<rv>", text)
    # Generated names: <owner>-<5 random characters> (the MachineSet's hash is stable).
    text = re.sub(r"\b((?:[a-z0-9-]+-control-plane)|(?:[a-z0-9-]+-md-\d+-[a-z0-9]{10}))-[bcdfghjklmnpqrstvwxz2456789]{5}\b",
                  r"\1-<rand>", text)
    out = []
    for line in text.split("\n"):
        # Ages in table cells: "12s", "3m" between runs of spaces or at the end.
        line = re.sub(r"(?<=  )\d+[smhd](?=  |$)", "<age>", line)
        line = re.sub(r"^\d+[smhd](?=  )", "<age>", line)
        m = re.match(r"^( *)(.*)$", line)
        line = m.group(1) + re.sub(r"  +", "  ", m.group(2)).rstrip()
        out.append(line)
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1] == "align":
        sys.exit(align(sys.argv[2]))
    sys.stdout.write(normalise(sys.stdin.read()))
