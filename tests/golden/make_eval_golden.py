#!/usr/bin/python3
"""Golden fixtures for vts::eval (mAP, PR curve, P@k, radius precision) and vts::index (bit
order, FAISS file layout).

The metrics follow hashing-spec §4.3/§4.4 as DeepHash-pytorch's utils/tools.py computes them
(CalcTopMap / CalcTopMapWithPR and the pr_curve_path index list), with one deliberate change: the
ranking uses a STABLE argsort, the tie order VTS documents (ascending distance, then ascending
database index). Codes are random ±1 with few bits, so distances tie heavily and the tie order
matters.

Run from anywhere with Debian's Python (numpy; faiss optional):  /usr/bin/python3 make_eval_golden.py
Writes tests/golden/eval/*.npy (+ FAISS files when faiss is importable). Deterministic.
"""
import os
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval")


def hamming(q, r):
    # §4.2: 0.5 * (K - R q), exact for ±1 codes.
    return 0.5 * (r.shape[1] - r @ q)


def ranking(q, r):
    return np.argsort(hamming(q, r), kind="stable")


def calc_top_map(qb, ql, rb, rl, topk):
    """§4.3, including the topk = -1 slice quirk (gnd[0:-1]) when topk == -1."""
    aps = np.zeros(qb.shape[0])
    for i in range(qb.shape[0]):
        gnd = (ql[i] @ rl.T > 0).astype(np.float32)
        gnd = gnd[ranking(qb[i], rb)]
        tgnd = gnd[0:topk]
        tsum = int(np.sum(tgnd))
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)).reshape(-1) + 1.0
        aps[i] = np.mean(count / tindex)
    return np.mean(aps), aps


def calc_pr(qb, ql, rb, rl, topk):
    """§4.4: full curves averaged over the queries with a relevant item in the top k."""
    nq, n = qb.shape[0], rb.shape[0]
    prec = np.zeros((nq, n))
    rec = np.zeros((nq, n))
    for i in range(nq):
        gnd = (ql[i] @ rl.T > 0).astype(np.float32)
        gnd = gnd[ranking(qb[i], rb)]
        if int(np.sum(gnd[0:topk])) == 0:
            continue
        c = np.cumsum(gnd)
        prec[i] = c / np.arange(1, n + 1)
        rec[i] = c / np.sum(gnd)
    keep = np.where(rec[:, -1] == 1.0)[0]
    return prec[keep].mean(0), rec[keep].mean(0), len(keep)


def reference_points(n):
    """The pr_curve_path index list of DeepHash-pytorch's validate()."""
    index_range = n // 100
    index = [i * 100 - 1 for i in range(1, index_range + 1)]
    max_index = max(index)
    overflow = n - index_range * 100
    return np.array(index + [max_index + i for i in range(1, overflow + 1)], dtype=np.int64)


def precision_at(qb, ql, rb, rl, ks):
    """§4.5's p = (relevant in the top k) / k, averaged over all queries."""
    out = []
    for k in ks:
        k = min(k, rb.shape[0])
        p = []
        for i in range(qb.shape[0]):
            gnd = (ql[i] @ rl.T > 0)[ranking(qb[i], rb)]
            p.append(gnd[:k].sum() / k)
        out.append(np.mean(p))
    return np.array(out)


def radius_precision(qb, ql, rb, rl, r):
    p, hit = [], []
    for i in range(qb.shape[0]):
        inside = hamming(qb[i], rb) <= r
        m = inside.sum()
        rel = (ql[i] @ rl.T > 0)
        p.append((rel & inside).sum() / m if m > 0 else 0.0)
        hit.append(m > 0)
    return np.array([np.mean(p), np.mean(hit)])


def codes_near(rng, protos, labels_first, bits, flip):
    """±1 codes: each item starts from its first class's prototype, each bit flipped w.p. flip."""
    c = protos[labels_first].copy()
    mask = rng.random(c.shape) < flip
    c[mask] *= -1
    return c.astype(np.float32)


def make_case(name, rng, n_db, n_q, bits, classes, multi):
    protos = np.where(rng.random((classes, bits)) < 0.5, -1.0, 1.0)
    def labels(n):
        lab = np.zeros((n, classes), dtype=np.float32)
        first = rng.integers(0, classes, n)
        lab[np.arange(n), first] = 1
        if multi:
            extra = rng.integers(0, classes, (n, 2))
            use = rng.random((n, 2)) < 0.4
            for j in range(2):
                lab[np.arange(n)[use[:, j]], extra[use[:, j], j]] = 1
        return lab, first
    dl, dfirst = labels(n_db)
    ql, qfirst = labels(n_q)
    if multi:
        # A class no database item has: queries with only that label have no relevant item and
        # must count as AP 0 (and stay out of the PR average).
        dl[:, classes - 1] = 0
        ql[:3] = 0
        ql[:3, classes - 1] = 1
    db = codes_near(rng, protos, dfirst, bits, 0.25)
    qb = codes_near(rng, protos, qfirst, bits, 0.25)

    topks = np.array([-1, n_db, 100, 7, n_db + 50], dtype=np.int64)  # -1: the quirk; n_db: "all"
    maps = np.array([calc_top_map(qb, ql, db, dl, int(k))[0] for k in topks])
    _, ap = calc_top_map(qb, ql, db, dl, -1)
    p, r, used = calc_pr(qb, ql, db, dl, -1)
    ks = np.array([1, 10, 100, n_db], dtype=np.int64)
    ref = reference_points(n_db)

    save = lambda key, a: np.save(os.path.join(OUT, f"{name}_{key}.npy"), a)
    save("query_codes", qb.astype(np.int8))
    save("db_codes", db.astype(np.int8))
    save("db_packed", np.packbits(db > 0, axis=1, bitorder="little"))
    save("query_labels", ql.astype(np.uint8))
    save("db_labels", dl.astype(np.uint8))
    save("map_topk", topks)
    save("map", maps)
    save("ap", ap)
    save("pr_precision", p)
    save("pr_recall", r)
    save("pr_queries", np.array([used], dtype=np.int64))
    save("pr_ref_index", ref)
    save("p_at_k", ks)
    save("precision_at", precision_at(qb, ql, db, dl, ks))
    save("radius2", radius_precision(qb, ql, db, dl, 2))
    print(f"{name}: n_db={n_db} n_q={n_q} K={bits} classes={classes} mAP(-1)={maps[0]:.6f} "
          f"PR queries={used} ref points={len(ref)}")


def make_faiss():
    try:
        import faiss
    except ImportError:
        print("faiss not importable: FAISS fixtures left as they are")
        return
    rng = np.random.default_rng(99)
    codes = rng.integers(0, 256, (20, 8), dtype=np.uint8)
    np.save(os.path.join(OUT, "faiss_codes.npy"), codes)
    flat = faiss.IndexBinaryFlat(64)
    flat.add(codes)
    faiss.write_index_binary(flat, os.path.join(OUT, "faiss_flat_64.index"))
    ids = np.arange(20, dtype=np.int64) * 3 + 1000
    np.save(os.path.join(OUT, "faiss_ids.npy"), ids)
    idmap = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(64))
    idmap.add_with_ids(codes, ids)
    faiss.write_index_binary(idmap, os.path.join(OUT, "faiss_idmap_64.index"))
    print(f"faiss {faiss.__version__}: flat and idmap fixtures written")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240601)
    # Single label, 16 bits: at most 17 distinct distances for 1,030 items, so ties everywhere;
    # n % 100 = 30 exercises the reference points' tail.
    make_case("single", rng, n_db=1030, n_q=60, bits=16, classes=10, multi=False)
    # Multi-label, 24 bits (a width without a dedicated kernel), zero-relevant queries, n < 1000.
    make_case("multi", rng, n_db=420, n_q=45, bits=24, classes=12, multi=True)
    make_faiss()


if __name__ == "__main__":
    main()
