# The audit event log: a ring buffer of fixed-size records on a raw flash region.
#
# The region is a block device with MicroPython's extended protocol:
# readblocks(n, buf, offset), writeblocks(n, buf, offset) which only programs,
# ioctl(4)/ioctl(5) for block count and size, ioctl(6, n) to erase block n.
# (esp32.Partition and rp2.Flash give exactly this on the boards.)
#
# Records come complete from the caller (layout owned by protocol/events.py):
# bytes 0-3 are the sequence number (u32 big-endian, from 1, each record one more
# than the last) and the last 4 bytes are crc32 of the rest, big-endian. A slot of
# all 0xFF bytes is erased. Each erase block holds R = block_size // record_size
# slots, filled in order from slot 0; blocks are used in ring order.
#
# Erase-ahead rule. The block after the write block is always erased. When an
# append fills block k, block k+2 (the oldest) is erased at once, before the
# append returns; the head then moves on into block k+1, which was erased one
# block earlier. So the head never writes into a block whose erase could have
# been interrupted by the same power cut, there is always a wholly erased block
# between the newest and the oldest record, and a fresh boot can always append
# at once. Cost: one erase per R records (1/128 with 32-byte records in 4096-byte
# blocks), and one block of capacity: the log keeps between (N-2)*R and
# (N-1)*R - 1 records (N blocks); `capacity` is the guaranteed (N-2)*R.
#
# Power cuts. An append programs exactly one slot with one write. A cut during
# that write loses at most that record: the slot is left erased (reused) or
# holds a torn record, which fails its CRC and is skipped, never written again.
# A cut during the erase that evicts block k+2 leaves it half-erased; recovery
# erases it again, and reads never return its leftovers. Records already written
# are never touched by anything but that eviction.
#
# Recovery (boot) reads the first slot of every block, takes the block whose
# first record has the highest sequence number, and scans only that block plus
# any block whose first slot is damaged (a torn first write, or the evicted block
# of an interrupted erase). The newest record found is the head; the next write
# goes after the last non-erased slot of the head block (or to the next block if
# it is full); the block after the write block is then checked, and erased again
# if it is not clean.
#
# Not safe for a read() generator to be consumed across append(): take what you
# need first. The caller keeps the MAC chain: last_record() gives the newest
# record after a reboot so the chain can continue.
import binascii


class EventLogError(ValueError):
    pass


class EventLog:
    def __init__(self, bdev, record_size=32):
        bs = bdev.ioctl(5, 0)
        nb = bdev.ioctl(4, 0)
        if record_size < 8 or bs % record_size:
            raise EventLogError("record size must divide the block size")
        if nb < 3:
            raise EventLogError("the log needs at least 3 blocks")
        self._dev = bdev
        self.record_size = record_size
        self.block_size = bs
        self.block_count = nb
        self.per_block = bs // record_size
        self._erased = b"\xff" * record_size
        self._buf = bytearray(record_size)
        self._ready = False
        self._wb = 0  # block of the next write
        self._ws = 0  # slot of the next write
        self._next = 1
        self._oldest = 0  # seq of the oldest readable record, 0 if none
        self._last = None
        # Operations since this object was made (boot).
        self.writes = 0
        self.bytes_written = 0
        self.erases = 0

    # -- records -------------------------------------------------------------

    def _seq(self, rec):
        # The seq of a valid record, or 0.
        rs = self.record_size
        crc = binascii.crc32(memoryview(rec)[0 : rs - 4]) & 0xFFFFFFFF
        if crc != int.from_bytes(rec[rs - 4 : rs], "big"):
            return 0
        seq = int.from_bytes(rec[0:4], "big")
        return 0 if seq == 0xFFFFFFFF else seq

    def _read_slot(self, block, slot, buf):
        self._dev.readblocks(block, buf, slot * self.record_size)

    def _scan(self, block):
        # (highest seq, its slot, last non-erased slot) of one block.
        buf = self._buf
        best = 0
        best_slot = -1
        last = -1
        for s in range(self.per_block):
            self._read_slot(block, s, buf)
            if buf == self._erased:
                continue
            last = s
            q = self._seq(buf)
            if q > best:
                best = q
                best_slot = s
        return best, best_slot, last

    def _erase(self, block):
        self._dev.ioctl(6, block)
        self.erases += 1

    def _ensure_erased(self, block):
        buf = self._buf
        for s in range(self.per_block):
            self._read_slot(block, s, buf)
            if buf != self._erased:
                self._erase(block)
                return

    def _first_seq(self, block, end=None):
        # The seq of the first valid record of a block (0 if none), looking at
        # slots before `end`. Usually one read: slot 0.
        buf = self._buf
        if end is None:
            end = self.per_block
        for s in range(end):
            self._read_slot(block, s, buf)
            if buf == self._erased:
                return 0  # slots fill in order: nothing after an erased slot
            q = self._seq(buf)
            if q:
                return q
        return 0

    def _find_oldest(self):
        n = self.block_count
        for i in range(2, n + 1):
            b = (self._wb + i) % n
            q = self._first_seq(b, self._ws if b == self._wb else None)
            if q:
                return q
        return 0

    # -- boot ----------------------------------------------------------------

    def recover(self):
        """Find head and tail after a boot or power cut. Returns next_seq."""
        n = self.block_count
        r = self.per_block
        buf = self._buf
        top = 0
        top_block = -1
        candidates = []
        for b in range(n):
            self._read_slot(b, 0, buf)
            if buf == self._erased:
                continue
            q = self._seq(buf)
            if not q:
                candidates.append(b)  # torn first record, or a half-erased block
            elif q > top:
                top = q
                top_block = b
        if top_block >= 0:
            candidates.append(top_block)
        head = 0
        head_block = head_slot = last = -1
        for b in candidates:
            q, slot, end = self._scan(b)
            if q > head:
                head, head_block, head_slot, last = q, b, slot, end
        if head_block < 0:
            # Empty log (perhaps with a torn first record): start at block 0.
            self._wb = 0
            self._ws = 0
            self._ensure_erased(0)
            self._next = 1
            self._last = None
        else:
            self._read_slot(head_block, head_slot, buf)
            self._last = bytes(buf)
            self._next = head + 1
            self._wb = head_block
            self._ws = last + 1
            if self._ws == r:
                # Head block full: move on to the next block, past any torn
                # writes already made there.
                self._wb = (head_block + 1) % n
                self._ws = self._scan(self._wb)[2] + 1
                if self._ws == r:  # a block of nothing but torn writes
                    self._erase(self._wb)
                    self._ws = 0
        # The block after the write block must be erased (an eviction may have
        # been cut part-way).
        self._ensure_erased((self._wb + 1) % n)
        self._oldest = self._find_oldest()
        self._ready = True
        return self._next

    def format(self):
        """Erase the whole region: an empty log (for commissioning a region
        that holds something else)."""
        for b in range(self.block_count):
            self._erase(b)
        return self.recover()

    def restart_with(self, record):
        """Make `record` (seq next_seq, valid CRC) the only record: a factory
        reset, which erases what came before but keeps the numbering.

        It goes into slot 0 of the block after the write block, which the
        erase-ahead rule keeps erased, so the newest record is never lost and
        the log is never empty; then every other block is erased. A cut during
        those erases leaves some older blocks: recovery keeps the numbering
        (the head is this record) and erase_older() finishes the job."""
        if not self._ready:
            self.recover()
        seq = self._seq(record)
        if len(record) != self.record_size or not seq or seq != self._next:
            raise EventLogError("record must be the next valid record")
        target = (self._wb + 1) % self.block_count
        self._ready = False
        self._dev.writeblocks(target, record, 0)
        self.writes += 1
        self.bytes_written += self.record_size
        self._wb, self._ws = target, 1
        self._next = seq + 1
        self._last = bytes(record)
        self._oldest = seq
        self.erase_older()

    def erase_older(self):
        """Erase every block but the write block (see restart_with)."""
        n = self.block_count
        self._ready = False
        for i in range(1, n):
            self._ensure_erased((self._wb + i) % n)
        self._ready = True
        self._oldest = self._find_oldest()

    # -- writing -------------------------------------------------------------

    def append(self, record):
        """Program one complete record (one write of record_size bytes), whose
        seq must be next_seq and whose CRC must be valid. Returns its seq."""
        if not self._ready:
            self.recover()
        rs = self.record_size
        if len(record) != rs:
            raise EventLogError("record must be %d bytes" % rs)
        seq = self._seq(record)
        if not seq:
            raise EventLogError("record fails its CRC")
        if seq != self._next:
            raise EventLogError("record seq %d, expected %d" % (seq, self._next))
        self._ready = False  # if anything below fails, recover before going on
        self._dev.writeblocks(self._wb, record, self._ws * rs)
        self.writes += 1
        self.bytes_written += rs
        self._last = bytes(record)
        self._next = seq + 1
        if not self._oldest:
            self._oldest = seq
        self._ws += 1
        if self._ws == self.per_block:
            n = self.block_count
            evict = (self._wb + 2) % n
            self._read_slot(evict, 0, self._buf)
            had = self._buf != self._erased
            self._erase(evict)
            self._wb = (self._wb + 1) % n
            self._ws = 0
            if had:
                self._oldest = self._find_oldest()
        self._ready = True
        return seq

    # -- reading -------------------------------------------------------------

    @property
    def next_seq(self):
        if not self._ready:
            self.recover()
        return self._next

    @property
    def oldest_seq(self):
        """Seq of the oldest record kept (0 if the log is empty)."""
        if not self._ready:
            self.recover()
        return self._oldest

    @property
    def count(self):
        """Records kept. Sequence numbers are contiguous, so this is a
        subtraction, not a scan."""
        if not self._ready:
            self.recover()
        return self._next - self._oldest if self._oldest else 0

    @property
    def capacity(self):
        """Records the log is guaranteed to keep: (N-2) * R."""
        return (self.block_count - 2) * self.per_block

    def last_record(self):
        """The newest valid record (bytes), or None if the log is empty."""
        if not self._ready:
            self.recover()
        return self._last

    def read(self, from_seq=None, count=None):
        """Yield valid records (bytes), oldest to newest, starting at the first
        with seq >= from_seq, at most count of them."""
        if not self._ready:
            self.recover()
        if count is not None and count <= 0:
            return
        n = self.block_count
        r = self.per_block
        rs = self.record_size
        wb = self._wb
        ws = self._ws
        buf = bytearray(rs)
        erased = self._erased
        last = 0
        done = 0
        for i in range(2, n + 1):
            b = (wb + i) % n
            if from_seq is not None and i < n:
                # Skip the block if the next one starts at or before from_seq.
                nb = (b + 1) % n
                q = self._first_seq(nb, ws if nb == wb else None)
                if q and q <= from_seq:
                    continue
            end = ws if b == wb else r
            for s in range(end):
                self._dev.readblocks(b, buf, s * rs)
                if buf == erased:
                    break
                q = self._seq(buf)
                if q <= last:
                    continue  # torn (0) or out of order
                last = q
                if from_seq is not None and q < from_seq:
                    continue
                yield bytes(buf)
                done += 1
                if count is not None and done >= count:
                    return
