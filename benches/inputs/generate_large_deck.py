#!/usr/bin/env python3
"""Writes a realistic deck to stdout, deterministically: about N bytes (default 1 MiB), or
with `--rules N`, exactly N rules (in chunks of 200 rules plus a scene each).

The compile benchmarks' inputs were made with it:
    python3 benches/inputs/generate_large_deck.py 1048576 > benches/inputs/deck_1mb.rule
    python3 benches/inputs/generate_large_deck.py --rules 1000 > benches/inputs/rules_1000.rule
"""
import random
import sys

rule_target = None
if len(sys.argv) > 2 and sys.argv[1] == "--rules":
    rule_target = int(sys.argv[2])
    target = float("inf")
else:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 20
rng = random.Random(2611)
out = [
    "entity user key uid",
    "entity item key skuid",
    'tag ctx.channel: enum(app, h5, mini) passthrough',
]
int_tags = [f"user.score_{i}" for i in range(40)] + [f"item.metric_{i}" for i in range(20)]
for t in int_tags:
    out.append(f'tag {t}: int from "{t.split(".")[0]}_store" cache 3m')
out.append('tag user.lifecycle: enum(new, active, dormant, churned) from "crm" cache 3m')
out.append('tag user.segments: list<text> from "profile"')
out.append('tag user.city: text from "profile"')
out.append('tag user.last_order_at: time from "orders"')
user_ints = [t for t in int_tags if t.startswith("user.")]

def clause():
    kind = rng.randrange(6)
    if kind == 0:
        return f"{rng.choice(user_ints)} < {rng.randrange(1000)}"
    if kind == 1:
        return f"{rng.choice(user_ints)} between {rng.randrange(100)} and {100 + rng.randrange(900)}"
    if kind == 2:
        return f"user.lifecycle in [{', '.join(rng.sample(['new', 'active', 'dormant', 'churned'], 2))}]"
    if kind == 3:
        return f'user.segments contains "seg_{rng.randrange(50)}"'
    if kind == 4:
        return f'user.city starts_with "c{rng.randrange(30)}"'
    return f"user.last_order_at within {1 + rng.randrange(90)}d"

size = sum(len(line) + 1 for line in out)
rules = 0
scene = 0
while size < target and (rule_target is None or rules < rule_target):
    lines = []
    for _ in range(200):
        n = 2 + rng.randrange(4)
        joiner = rng.choice([" and ", " or "])
        lines.append(f"rule user r{rules} = {joiner.join(clause() for _ in range(n))}")
        rules += 1
    lines.append(f"scene s{scene} {{")
    lines.append("  keys uid")
    lines.append("  passes ctx.channel")
    lines.append(f"  instance slot -> {{ material: text, weight: int }} {{")
    for k in range(10):
        r = rng.randrange(rules)
        lines.append(f'    strategy st{k} when r{r} and ctx.channel == app => {{ material: "m{k}", weight: {k} }}')
    lines.append(f"    strategy exp when r{rng.randrange(rules)} {{")
    lines.append(f"      experiment e{scene} by uid {{")
    lines.append('        control 50% => { material: "control", weight: 0 }')
    lines.append('        treatment 50% => { material: "treatment", weight: 1 }')
    lines.append("      }")
    lines.append("    }")
    lines.append('    default => { material: "", weight: 0 }')
    lines.append("  }")
    lines.append("}")
    scene += 1
    out.extend(lines)
    size += sum(len(line) + 1 for line in lines)
print("\n".join(out))
