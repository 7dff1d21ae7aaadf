#!/usr/bin/env python3
"""Loro peer benchmark: a customer/tag workload equivalent to siyu-bench's.

Run via tools/loro-peer/run.sh (it prepares a virtualenv with `loro`).

  --quick     small sizes (a couple of seconds)
  --json      print exactly one JSON object on stdout (notes go to stderr)
  --seed N    RNG seed (default 7)

See README.md for what each figure means and where the comparison with Siyu
is not like for like.
"""

import argparse
import gc
import json
import platform
import random
import statistics
import string
import sys
import time

import loro
from loro import ExportMode, LoroDoc, LoroMap

ID_ALPHABET = string.ascii_letters + string.digits + "_-"
CUSTOMER_PREFIX = "wmQm7wCAAA"
TAG_PREFIX = "etQm7wCAAA"
STAFF = ("chenjing", "liuyang", "zhoumin")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚"
REMARKS = ("老客户", "喜欢蓝色", "周末到店", "会员生日在五月", "需要回访", "对价格敏感",
           "VIP", "送货上门", "只用微信联系", "推荐了两位朋友")


def note(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Small compatibility shims over the loro Python API (names moved between
# releases). Written against loro 1.x; fallbacks cover older spellings.

def loro_version():
    try:
        from importlib.metadata import version
        return version("loro")
    except Exception:
        return str(getattr(loro, "LORO_VERSION", getattr(loro, "__version__", "unknown")))


def oplog_vv(doc):
    vv = doc.oplog_vv
    return vv() if callable(vv) else vv


def state_vv(doc):
    vv = doc.state_vv
    return vv() if callable(vv) else vv


def len_ops(doc):
    n = doc.len_ops
    return n() if callable(n) else n


def export_snapshot(doc):
    if hasattr(ExportMode, "Snapshot"):
        return doc.export(ExportMode.Snapshot())
    return doc.export_snapshot()


def export_updates(doc, since_vv):
    if hasattr(ExportMode, "Updates"):
        return doc.export(ExportMode.Updates(since_vv))
    return doc.export_from(since_vv)


def import_bytes(doc, data):
    return doc.import_(data)


def child(value):
    """Unwrap map.get(key): ValueOrContainer -> container/value, None if absent."""
    if value is None:
        return None
    if hasattr(value, "container"):
        return value.container
    if hasattr(value, "value"):
        return value.value
    return value


def new_doc(rng):
    doc = LoroDoc()
    # Realistic random 64-bit peer ids, but drawn from the seeded RNG so the
    # encoded sizes are reproducible.
    doc.peer_id = rng.getrandbits(63) | 1
    return doc


# ---------------------------------------------------------------------------
# Ids and data

def wecom_id(rng, prefix):
    return prefix + "".join(rng.choice(ID_ALPHABET) for _ in range(21)) + "A"


def short_customer_id(i):
    return "wm%06d" % i


def short_tag_id(i):
    return "et%06d" % i


def chinese_name(rng):
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def phone(rng):
    return "139" + "".join(rng.choice(string.digits) for _ in range(8))


def add_customer(customers, cid, name, phone_no=None):
    """Customer map: name (+ phone) and an (empty) nested tags map.

    The tags map is created together with the customer so that concurrent tag
    edits on different replicas land in the same container (two replicas each
    creating "tags" concurrently would be an LWW conflict on the key)."""
    cmap = customers.insert_container(cid, LoroMap())
    cmap.insert("name", name)
    if phone_no is not None:
        cmap.insert("phone", phone_no)
    tags = cmap.insert_container("tags", LoroMap())
    return cmap, tags


def toggle_tag(tags, tag, staff):
    """Returns True for an add, False for a remove."""
    if tags.get(tag) is None:
        tags.insert(tag, staff)
        return True
    tags.delete(tag)
    return False


# ---------------------------------------------------------------------------
# 1. Local edits

def build_local_doc(seed, n_customers, n_tags):
    rng = random.Random(seed)
    doc = new_doc(rng)
    customers = doc.get_map("customers")
    cids = [wecom_id(rng, CUSTOMER_PREFIX) for _ in range(n_customers)]
    tids = [wecom_id(rng, TAG_PREFIX) for _ in range(n_tags)]
    for cid in cids:
        _, tags = add_customer(customers, cid, chinese_name(rng), phone(rng))
        # Roughly half of the (customer, tag) pairs start present, so the
        # timed toggles are a mix of adds and removes.
        for t in tids:
            if rng.random() < 0.5:
                tags.insert(t, rng.choice(STAFF))
    doc.commit()
    return doc, customers, cids, tids


def bench_local(seed, n_edits, reps):
    n_customers, n_tags = 200, 10
    tag_runs, field_runs = [], []
    adds = removes = 0
    for _ in range(reps):
        doc, customers, cids, tids = build_local_doc(seed, n_customers, n_tags)
        adds = removes = 0
        gc.collect()
        t0 = time.perf_counter()
        for i in range(n_edits):
            # Resolve the customer by id on every edit (as an app handling a
            # "toggle tag T on customer C" request would).
            tags = child(child(customers.get(cids[i % n_customers])).get("tags"))
            tag = tids[(i // n_customers) % n_tags]
            if tags.get(tag) is None:
                tags.insert(tag, STAFF[i % 3])
                adds += 1
            else:
                tags.delete(tag)
                removes += 1
            doc.commit()
        tag_runs.append(time.perf_counter() - t0)

        gc.collect()
        t0 = time.perf_counter()
        for i in range(n_edits):
            cmap = child(customers.get(cids[i % n_customers]))
            cmap.insert("phone", "139" + str(i))
            doc.commit()
        field_runs.append(time.perf_counter() - t0)
    tag_s = statistics.median(tag_runs)
    field_s = statistics.median(field_runs)
    return {
        "loro_local_edits": n_edits,
        "loro_local_edits_per_s": round(n_edits / tag_s, 1),
        "loro_local_edit_us": round(tag_s / n_edits * 1e6, 2),
        "loro_local_edit_adds": adds,
        "loro_local_edit_removes": removes,
        "loro_field_edit_us": round(field_s / n_edits * 1e6, 2),
    }


# ---------------------------------------------------------------------------
# 2. Wire size of a clerk's batch

def bench_wire(seed, n_customers, n_ops, short_ids):
    rng = random.Random(seed)
    if short_ids:
        cids = [short_customer_id(i) for i in range(n_customers)]
        tids = [short_tag_id(i) for i in range(8)]
    else:
        cids = [wecom_id(rng, CUSTOMER_PREFIX) for _ in range(n_customers)]
        tids = [wecom_id(rng, TAG_PREFIX) for _ in range(8)]
    names = [chinese_name(rng) for _ in range(n_customers)]
    # Separate streams so that the short-id and long-id runs make the very
    # same op sequence and peer ids.
    op_rng = random.Random(seed * 1000003 + 2)
    peer_rng = random.Random(seed * 1000003 + 1)

    sender = new_doc(peer_rng)
    receiver = new_doc(peer_rng)
    customers = sender.get_map("customers")
    tag_maps = []
    for cid, name in zip(cids, names):
        _, tags = add_customer(customers, cid, name)
        tag_maps.append(tags)
    sender.commit()
    snapshot = export_snapshot(sender)
    import_bytes(receiver, snapshot)
    base_vv = oplog_vv(sender)

    batch_bytes = []
    last_vv = base_vv
    for i in range(n_ops):
        c = op_rng.randrange(n_customers)
        t = op_rng.randrange(8)
        toggle_tag(tag_maps[c], tids[t], STAFF[op_rng.randrange(3)])
        if (i + 1) % 50 == 0 or i + 1 == n_ops:
            sender.commit()
            # Informative: the same ops shipped as one sync per 50-op commit.
            vv = oplog_vv(sender)
            batch_bytes.append(len(export_updates(sender, last_vv)))
            last_vv = vv
    updates = export_updates(sender, base_vv)
    import_bytes(receiver, updates)
    if receiver.get_deep_value() != sender.get_deep_value():
        raise SystemExit("wire: receiver did not converge with sender")
    return {
        "bytes": len(updates),
        "per_op": len(updates) / n_ops,
        "per_op_batch50": sum(batch_bytes) / n_ops,
        "snapshot": len(snapshot),
    }


# ---------------------------------------------------------------------------
# 3. Import / merge

class MixWorkload:
    """Applies the realistic op mix to one replica.

    Op shares (by counted ops): 60% tag toggles on a hot working set (10% of
    the base customers), 20% field edits (phone/remark), 10% new customers
    (2 counted ops each: name + phone), 10% tag toggles on any customer."""

    def __init__(self, doc, customers, cids, tag_maps, tids, hot, rng):
        self.doc, self.customers = doc, customers
        self.cids, self.tag_maps, self.tids, self.hot, self.rng = cids, tag_maps, tids, hot, rng

    def run(self, n_ops, commit_every):
        rng, cids, tag_maps, tids, hot = self.rng, self.cids, self.tag_maps, self.tids, self.hot
        ops = 0
        next_commit = commit_every
        while ops < n_ops:
            r = rng.random() * 0.95  # event weights 0.60 / 0.20 / 0.05 / 0.10
            if r < 0.60:
                c = hot[rng.randrange(len(hot))]
                toggle_tag(tag_maps[c], tids[rng.randrange(len(tids))], STAFF[rng.randrange(3)])
                ops += 1
            elif r < 0.80:
                cmap = child(self.customers.get(cids[rng.randrange(len(cids))]))
                if rng.random() < 0.5:
                    cmap.insert("phone", phone(rng))
                else:
                    cmap.insert("remark", rng.choice(REMARKS))
                ops += 1
            elif r < 0.85 and n_ops - ops >= 2:
                cid = wecom_id(rng, CUSTOMER_PREFIX)
                _, tags = add_customer(self.customers, cid, chinese_name(rng), phone(rng))
                cids.append(cid)
                tag_maps.append(tags)
                ops += 2
            else:
                c = rng.randrange(len(cids))
                toggle_tag(tag_maps[c], tids[rng.randrange(len(tids))], STAFF[rng.randrange(3)])
                ops += 1
            if ops >= next_commit:
                self.doc.commit()
                next_commit += commit_every
        self.doc.commit()
        return ops


def materialize(doc):
    # A doc loaded from a snapshot decodes container state lazily; touch the
    # whole state (untimed) so the merge timing does not pay for that.
    doc.get_deep_value()


def bench_merge(seed, n_base, n_ops, n_b_ops, reps):
    rng = random.Random(seed)
    peer_rng = random.Random(seed * 1000003 + 3)
    tids = [wecom_id(rng, TAG_PREFIX) for _ in range(8)]
    cids = [wecom_id(rng, CUSTOMER_PREFIX) for _ in range(n_base)]

    a = new_doc(peer_rng)
    customers = a.get_map("customers")
    tag_maps = []
    for cid in cids:
        _, tags = add_customer(customers, cid, chinese_name(rng))
        tag_maps.append(tags)
    a.commit()
    base_snapshot = export_snapshot(a)
    base_vv = oplog_vv(a)
    base_loro_ops = len_ops(a)
    hot = rng.sample(range(n_base), max(1, n_base // 10))

    t0 = time.perf_counter()
    counted = MixWorkload(a, customers, list(cids), list(tag_maps), tids, hot, rng).run(n_ops, 1000)
    gen_s = time.perf_counter() - t0
    updates = export_updates(a, base_vv)
    a_loro_ops = len_ops(a) - base_loro_ops
    a_value = a.get_deep_value()
    note("  merge: doc A made %d ops (%d loro ops) in %.2fs; update %d bytes"
         % (counted, a_loro_ops, gen_s, len(updates)))

    b_peer_ids = [peer_rng.getrandbits(63) | 1 for _ in range(reps)]

    # Sequential: B is at the base and imports A's batch.
    runs, deep_runs = [], []
    for k in range(reps):
        b = LoroDoc()
        b.peer_id = b_peer_ids[k]
        import_bytes(b, base_snapshot)
        materialize(b)
        gc.collect()
        t0 = time.perf_counter()
        import_bytes(b, updates)
        runs.append(time.perf_counter() - t0)
        # Loro applies imported updates to the (attached) state eagerly: the
        # state version already includes all of A's ops here.
        state_ok = state_vv(b) == oplog_vv(a)
        t0 = time.perf_counter()
        b_value = b.get_deep_value()
        deep_runs.append(time.perf_counter() - t0)
        if not state_ok or b_value != a_value:
            raise SystemExit("merge: B did not converge with A")
    merge_s = statistics.median(runs)
    out = {
        "loro_merge_ops": counted,
        "loro_merge_seconds": round(merge_s, 4),
        "loro_merge_ops_per_s": round(counted / merge_s, 1),
        "loro_merge_loro_ops": a_loro_ops,
        "loro_merge_update_bytes": len(updates),
        "loro_merge_deep_value_seconds": round(statistics.median(deep_runs), 4),
    }

    # Concurrent: B first makes its own conflicting edits on the same hot set
    # (tag toggles + phone/remark edits), then imports A's batch.
    if n_b_ops > 0:
        cruns = []
        for k in range(reps):
            b = LoroDoc()
            b.peer_id = b_peer_ids[k]
            import_bytes(b, base_snapshot)
            materialize(b)
            b_customers = b.get_map("customers")
            b_tags = [child(child(b_customers.get(cid)).get("tags")) for cid in cids]
            b_rng = random.Random(seed * 1000003 + 4)
            b_ops = 0
            while b_ops < n_b_ops:
                c = hot[b_rng.randrange(len(hot))]
                if b_rng.random() < 0.7:
                    toggle_tag(b_tags[c], tids[b_rng.randrange(len(tids))], STAFF[b_rng.randrange(3)])
                else:
                    child(b_customers.get(cids[c])).insert("phone", phone(b_rng))
                b_ops += 1
                if b_ops % 50 == 0:
                    b.commit()
            b.commit()
            gc.collect()
            t0 = time.perf_counter()
            import_bytes(b, updates)
            cruns.append(time.perf_counter() - t0)
            if k == 0:
                # Convergence check (untimed): A gets B's edits, both must match.
                a2 = LoroDoc()
                a2.peer_id = 2
                import_bytes(a2, base_snapshot)
                import_bytes(a2, updates)
                import_bytes(a2, export_updates(b, base_vv))
                if a2.get_deep_value() != b.get_deep_value():
                    raise SystemExit("merge (concurrent): replicas did not converge")
        cs = statistics.median(cruns)
        out.update({
            "loro_merge_concurrent_b_ops": n_b_ops,
            "loro_merge_concurrent_seconds": round(cs, 4),
            "loro_merge_concurrent_ops_per_s": round(counted / cs, 1),
        })
    return out


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    if args.quick:
        n_local, wire_customers, wire_ops = 200, 400, 2000
        merge_base, merge_ops, merge_b_ops, reps = 1000, 5000, 1000, 3
    else:
        n_local, wire_customers, wire_ops = 2000, 2000, 10000
        merge_base, merge_ops, merge_b_ops, reps = 5000, 100000, 1000, 3

    t_start = time.perf_counter()
    res = {
        "loro_version": loro_version(),
        "seed": args.seed,
        "quick": args.quick,
        "python": platform.python_version(),
    }

    note("loro-peer: loro %s, seed %d, %s" % (res["loro_version"], args.seed, "quick" if args.quick else "full"))
    note("loro-peer: 1/3 local edits (%d edits, median of %d runs)" % (n_local, reps))
    res.update(bench_local(args.seed, n_local, reps))

    note("loro-peer: 2/3 wire size (%d customers, %d tag ops)" % (wire_customers, wire_ops))
    long_w = bench_wire(args.seed, wire_customers, wire_ops, short_ids=False)
    short_w = bench_wire(args.seed, wire_customers, wire_ops, short_ids=True)
    res.update({
        "loro_tag_ops": wire_ops,
        "loro_tag_update_bytes": long_w["bytes"],
        "loro_tag_bytes_per_op": round(long_w["per_op"], 3),
        "loro_tag_bytes_per_op_batch50": round(long_w["per_op_batch50"], 3),
        "loro_tag_bytes_per_op_short": round(short_w["per_op"], 3),
        "loro_snapshot_bytes": long_w["snapshot"],
    })

    note("loro-peer: 3/3 import/merge (%d base customers, %d ops, median of %d runs)"
         % (merge_base, merge_ops, reps))
    res.update(bench_merge(args.seed, merge_base, merge_ops, merge_b_ops, reps))
    res["wall_seconds"] = round(time.perf_counter() - t_start, 2)

    if args.json:
        sys.stdout.write(json.dumps(res, ensure_ascii=False) + "\n")
        return

    rows = [
        ("Loro version", res["loro_version"], ""),
        ("seed / mode", "%d / %s" % (args.seed, "quick" if args.quick else "full"), ""),
        ("1. local tag toggle + commit", "%.2f" % res["loro_local_edit_us"], "us/edit"),
        ("   local tag toggles", "%.0f" % res["loro_local_edits_per_s"], "edits/s"),
        ("   (edits: adds / removes)", "%d: %d / %d" % (res["loro_local_edits"], res["loro_local_edit_adds"],
                                                      res["loro_local_edit_removes"]), ""),
        ("   local field edit + commit", "%.2f" % res["loro_field_edit_us"], "us/edit"),
        ("2. tag batch wire size (32-char ids)", "%.3f" % res["loro_tag_bytes_per_op"], "bytes/op"),
        ("   ops / update bytes", "%d / %d" % (res["loro_tag_ops"], res["loro_tag_update_bytes"]), ""),
        ("   same, one sync per 50-op commit", "%.3f" % res["loro_tag_bytes_per_op_batch50"], "bytes/op"),
        ("   tag batch wire size (8-char ids)", "%.3f" % res["loro_tag_bytes_per_op_short"], "bytes/op"),
        ("   base snapshot (informative)", "%d" % res["loro_snapshot_bytes"], "bytes"),
        ("3. import/merge", "%.0f" % res["loro_merge_ops_per_s"], "ops/s"),
        ("   ops / seconds", "%d / %.4f" % (res["loro_merge_ops"], res["loro_merge_seconds"]), ""),
        ("   loro-internal ops / update bytes", "%d / %d" % (res["loro_merge_loro_ops"],
                                                           res["loro_merge_update_bytes"]), ""),
        ("   get_deep_value after import (untimed)", "%.4f" % res["loro_merge_deep_value_seconds"], "s"),
    ]
    if "loro_merge_concurrent_seconds" in res:
        rows += [
            ("   concurrent (B made %d edits first)" % res["loro_merge_concurrent_b_ops"],
             "%.0f" % res["loro_merge_concurrent_ops_per_s"], "ops/s"),
            ("   concurrent seconds", "%.4f" % res["loro_merge_concurrent_seconds"], "s"),
        ]
    rows.append(("wall time", "%.2f" % res["wall_seconds"], "s"))
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    print("Loro peer benchmark")
    for name, val, unit in rows:
        print("  %-*s  %*s  %s" % (w, name, v, val, unit))


if __name__ == "__main__":
    main()
