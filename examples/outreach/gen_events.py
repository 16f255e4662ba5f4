#!/usr/bin/env python3
"""Writes a deterministic behavior-event log for lapsed_nudge.rule to stdout.

usage: gen_events.py [USERS] [EVENTS_PER_USER] [SEED]

Each user browses phones and other items over a simulated morning, some users order;
events come slightly out of order (within the 5m allowed lateness) and a few are late
or repeated, so a replay exercises windows, lateness and ingestion by id.
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone

users = int(sys.argv[1]) if len(sys.argv) > 1 else 50
per_user = int(sys.argv[2]) if len(sys.argv) > 2 else 8
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 2612)
start = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)

events = []
for u in range(users):
    uid = f"u-{u:05d}"
    t = start + timedelta(seconds=rng.randrange(0, 3600))
    for i in range(per_user):
        t += timedelta(seconds=rng.randrange(10, 240))
        if rng.random() < 0.08:
            kind, fields = "order", {"amount_cents": rng.randrange(1_00, 500_00)}
        else:
            category = rng.choice(["phone", "phone", "phone", "case", "book"])
            kind, fields = "browse", {"sku": f"{category}-{rng.randrange(20)}", "category": category}
        events.append({"id": f"{uid}-{i}", "event": kind, "time": t, "uid": uid, **fields})

events.sort(key=lambda e: e["time"])
# Out of order within the lateness: swap some neighbours; a few arrive far too late.
for i in range(1, len(events)):
    if rng.random() < 0.1:
        events[i - 1], events[i] = events[i], events[i - 1]
late = [dict(e) for e in rng.sample(events, max(1, len(events) // 100))]
for e in late:
    e["id"] += "-late"
    e["time"] -= timedelta(hours=2)
events += late
events += rng.sample(events, max(1, len(events) // 100))  # repeats: ingested once

for e in events:
    e = dict(e, time=e["time"].strftime("%Y-%m-%dT%H:%M:%SZ"))
    print(json.dumps(e))
