# The MAC chain over the lock's audit records: what a pulled log proves.
# verify_chain names every record that is missing, altered, reordered or
# damaged. protocol.events.verify_chain, the interface, calls it; it is a
# module of its own so the lock, which writes the chain and never verifies a
# whole one, does not carry it on its heap. MicroPython-clean like the rest
# of protocol/.
from protocol.crypto import eq
from protocol.events import _ERASED, GENESIS_MAC, RECORD_SIZE, _crc, _mac


class ChainReport:
    """What verify_chain found. Records are named by their index in the list given.

    ok            True when nothing below is wrong (unanchored is not wrong).
    first_seq, last_seq   the seq range found (None when no record is usable).
    anchored      the first record was checked against a known predecessor (the
                  anchor, or GENESIS_MAC for seq 1). If not, that record's own fields
                  are unauthenticated (normal once the ring has wrapped).
    verified      how many records have a right MAC.
    missing       (first, last) seq ranges held by no record.
    altered       records shown not to be what the lock wrote: a wrong MAC against the
                  known mac of their predecessor, or a seq that contradicts their
                  successor's MAC.
    unverifiable  records whose MAC fails but whose predecessor's mac is unknown (it is
                  missing or its own mac is wrong): altered, or just after a gap.
    reordered     records out of seq order or duplicated (the fewest such records that,
                  left out, leave the rest in increasing order).
    corrupt       records with a bad CRC, wrong size or erased: damaged, not authenticated.
    seqs          per record, the seq it holds as far as verification tells (a
                  successor's MAC can fix an edited seq), None if unknown.
    """

    def __init__(self):
        self.ok = True
        self.first_seq = None
        self.last_seq = None
        self.anchored = False
        self.verified = 0
        self.missing = []
        self.altered = []
        self.unverifiable = []
        self.reordered = []
        self.corrupt = []
        self.seqs = []

    def __repr__(self):
        return ("ChainReport(ok=%s, seq %s..%s, anchored=%s, verified=%d, missing=%s, "
                "altered=%s, unverifiable=%s, reordered=%s, corrupt=%s)" % (
                    self.ok, self.first_seq, self.last_seq, self.anchored, self.verified,
                    self.missing, self.altered, self.unverifiable, self.reordered,
                    self.corrupt))


def _out_of_order(order, seqs):
    """The positions in `order` outside one longest strictly increasing run of seqs."""
    tails = []  # type: list[int]  # tails[k]: position ending the best increasing run of length k + 1
    back = [-1] * len(order)
    for j in range(len(order)):
        s = seqs[order[j]]
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if seqs[order[tails[mid]]] < s:
                lo = mid + 1
            else:
                hi = mid
        back[j] = tails[lo - 1] if lo else -1
        if lo == len(tails):
            tails.append(j)
        elif seqs[order[tails[lo]]] != s:  # on a tie keep the earlier: a duplicate is the later
            tails[lo] = j
    keep = set()
    j = tails[-1] if tails else -1
    while j >= 0:
        keep.add(j)
        j = back[j]
    return [order[j] for j in range(len(order)) if j not in keep]


def _parse_records(records, rep):
    """Each record's head and mac, and its claimed seq where its CRC holds."""
    k = len(records)
    heads = [None] * k  # type: list[bytes | None]
    macs = [None] * k  # type: list[bytes | None]
    # claimed[i] is None or an int; the None checks go through indices (intact, live),
    # which mypy cannot narrow, so this list is left untyped (list[Any]).
    claimed = [None] * k  # type: list
    for i in range(k):
        rec = bytes(records[i])
        if len(rec) != RECORD_SIZE or rec == _ERASED:
            rep.corrupt.append(i)
            continue
        heads[i], macs[i] = rec[:20], rec[20:28]
        if _crc(rec[:28]) == int.from_bytes(rec[28:], "big"):
            claimed[i] = int.from_bytes(rec[:4], "big")
        else:
            rep.corrupt.append(i)  # its mac may still link its successor
    return heads, macs, claimed


def _links(live, intact, claimed, macs, anchor_mac, anchor_seq, link):
    """1. Which records verify, and through which predecessor (-1: the anchor)."""
    by_seq = {}
    for i in intact:
        if claimed[i] not in by_seq:
            by_seq[claimed[i]] = i
    via = [None] * len(claimed)  # type: list[int | None]
    prev = None
    for i in live:
        s = claimed[i]
        if s is not None:
            q = by_seq.get(s - 1)
            if prev is not None and link(macs[prev], i):
                via[i] = prev
            elif q is not None and q != prev and link(macs[q], i):
                via[i] = q
            elif s == anchor_seq + 1 and link(anchor_mac, i):
                via[i] = -1
        prev = i
    return via


def _true_seqs(live, intact, claimed, macs, via, anchor_mac, anchor_seq):
    """2. A verified record proves its predecessor's mac, hence that one's true seq.
    Returns the seqs and the macs known genuine by seq."""
    seqs = list(claimed)
    genuine = [v is not None for v in via]
    for i in intact:
        p = via[i]
        if p is not None and p >= 0 and via[p] is None:
            seqs[p] = claimed[i] - 1
            genuine[p] = True
    known = {anchor_seq: anchor_mac}
    for i in live:
        if genuine[i] and seqs[i] not in known:
            known[seqs[i]] = macs[i]
    return seqs, known


def _order(rep, live, seqs, lo, anchor_seq):
    """4. Order and completeness, by the seqs found, from seq lo on."""
    order = [i for i in live if seqs[i] is not None and seqs[i] >= lo]
    early = [i for i in live if seqs[i] is not None and seqs[i] < lo]
    rep.reordered = sorted(early + _out_of_order(order, seqs))
    found = sorted(set(seqs[i] for i in order))
    expect = lo
    for t in found:
        if t > expect:
            rep.missing.append((expect, t - 1))
        expect = t + 1
    if found:
        rep.first_seq, rep.last_seq = found[0], found[-1]
        rep.anchored = found[0] == anchor_seq + 1


def verify_chain(records, log_key, anchor_mac=None, anchor_seq=None):
    """Check a log read from the lock (records oldest first, in the order read).

    Without an anchor, a chain starting at seq 1 is checked from GENESIS_MAC, and one
    starting later (the ring has overwritten its oldest records) starts unanchored.
    anchor_mac is the mac of the last record seen before (say, at the previous
    collection) and anchor_seq its seq; records at or before anchor_seq are reported
    reordered. Without anchor_seq the anchor is taken to be the record just before the
    lowest seq given, and then a deletion of the first record after the anchor reads
    as the next record altered: pass anchor_seq.

    A record's MAC is tried against the mac stored in the record read before it and
    in the record holding seq - 1. When one matches, the record is what the lock
    wrote, and that predecessor's mac field is genuine: so its true seq is seq - 1,
    even if its own fields were edited. Hence:
    - deleting record n reports n missing and n + 1 unverifiable (its predecessor is
      gone, so an edit of n + 1 could not be told apart; it is not called altered);
    - editing record n (any field, CRC recomputed) reports n altered, at its true seq
      when the record after it is intact; if n's mac field was edited, n + 1 is
      reported unverifiable too (it hangs off a mac that is now unknown);
    - swapping records reports them reordered (the fewest that explain the order),
      all still verified; a repeated record reports the later copy reordered.
    Not detectable from the records alone: a truncated tail (compare last_seq with
    the lock's own count) and, when unanchored, the loss of the first records or an
    edit of the first record's fields; there an edit of the second record (or of the
    first record's mac field) shows as unverifiable, not altered. Keep an anchor from
    the previous collection to close this.
    """
    rep = ChainReport()
    heads, macs, claimed = _parse_records(records, rep)
    live = [i for i in range(len(records)) if macs[i] is not None]
    intact = [i for i in live if claimed[i] is not None]
    implicit = anchor_mac is None
    if implicit:
        anchor_mac, anchor_seq = GENESIS_MAC, 0
    elif anchor_seq is None:
        anchor_seq = min(claimed[i] for i in intact) - 1 if intact else 0

    def link(prev_mac, i):
        return eq(_mac(log_key, prev_mac, heads[i]), macs[i])

    via = _links(live, intact, claimed, macs, anchor_mac, anchor_seq, link)
    seqs, known = _true_seqs(live, intact, claimed, macs, via, anchor_mac, anchor_seq)
    have = [seqs[i] for i in live if seqs[i] is not None]
    start = min(have) if have else None
    # 3. Judge the records that did not verify.
    for i in intact:
        t = seqs[i]
        pm = known.get(t - 1)
        if via[i] is not None or (pm is not None and link(pm, i)):
            rep.verified += 1
        elif pm is not None or t != claimed[i]:
            rep.altered.append(i)
        elif not (implicit and t == start):
            rep.unverifiable.append(i)
    _order(rep, live, seqs, start if implicit else anchor_seq + 1, anchor_seq)
    rep.seqs = seqs
    rep.ok = not (rep.missing or rep.altered or rep.unverifiable or rep.reordered
                  or rep.corrupt)
    return rep
