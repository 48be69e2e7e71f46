#!/usr/bin/env python3
"""Writes an export of COUNT ended processes for `taskdaemon import`.

Usage: footprint_seed.py TEMPLATE.jsonl COUNT > seed.jsonl

TEMPLATE is the export of a workspace holding one ended process (see
bench/footprint.sh); each copy gets its own id, uuid and event numbers,
and a mix of outcomes, tools and commands like the rows a real store holds.
"""
import json
import sys
import uuid


def main():
    template, count = sys.argv[1], int(sys.argv[2])
    records = [json.loads(line) for line in open(template)]
    header = [r for r in records if r["type"] == "header"]
    task = next(r for r in records if r["type"] == "task")
    events = [r for r in records if r["type"] == "event" and r.get("task_id") == task["id"]]
    out = sys.stdout
    for r in header:
        out.write(json.dumps(r) + "\n")
    out.write(json.dumps({"name": "task_id", "type": "counter", "value": count}) + "\n")
    tools = ["claude", "codex", None, "aider"]
    commands = [["cargo", "test"], ["npm", "run", "dev"], ["pytest", "-x"], ["sleep", "5"]]
    seq = 0
    all_events = []
    for n in range(1, count + 1):
        t = dict(task)
        t["id"] = f"TASK-{n}"
        t["uuid"] = str(uuid.uuid4())
        t["tool"] = tools[n % len(tools)]
        t["argv"] = commands[n % len(commands)]
        t["command"] = " ".join(t["argv"])
        t["session"] = f"session-{n // 100}"
        failed = n % 7 == 0
        t["status"] = "failed" if failed else "succeeded"
        t["exit_code"] = 1 if failed else 0
        out.write(json.dumps(t) + "\n")
        for e in events:
            seq += 1
            e = dict(e)
            e["seq"] = seq
            e["task_id"] = t["id"]
            all_events.append(e)
    for e in all_events:
        out.write(json.dumps(e) + "\n")


main()
