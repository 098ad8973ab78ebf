# Event log ring buffer on a RAM block device; runs on CPython and MicroPython.
# Records are built here from the layout alone (seq u32 BE at 0, crc32 of the
# rest in the last 4 bytes), independently of protocol/events.py.
import binascii

from firmware.eventlog import EventLog, EventLogError
from simulator.mpy.flash import RamBlockDevice
from testvectors import raises

BS = 256  # 8 records of 32 bytes per block
NB = 6
R = BS // 32


def rec(seq, size=32):
    body = seq.to_bytes(4, "big") + bytes([(seq * 7 + i) & 0xFF for i in range(size - 8)])
    return body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")


def fresh(nb=NB, bs=BS):
    dev = RamBlockDevice(bs, nb)
    log = EventLog(dev)
    log.recover()
    return dev, log


def reboot(dev, record_size=32):
    log = EventLog(dev, record_size)
    log.recover()
    return log


def fill(log, upto):
    while log.next_seq <= upto:
        log.append(rec(log.next_seq))


def seqs(log, from_seq=None, count=None):
    return [int.from_bytes(r[0:4], "big") for r in log.read(from_seq, count)]


def check_contiguous(log):
    got = list(log.read())
    for r in got:
        assert r == rec(int.from_bytes(r[0:4], "big"))
    s = [int.from_bytes(r[0:4], "big") for r in got]
    assert s == list(range(log.next_seq - len(s), log.next_seq)), s
    assert len(s) == log.count
    return s


def slot_addr(block, slot):
    return block * BS + slot * 32


def test_empty():
    dev, log = fresh()
    assert log.next_seq == 1
    assert log.count == 0
    assert log.last_record() is None
    assert list(log.read()) == []
    assert log.capacity == (NB - 2) * R
    assert log.writes == 0 and log.erases == 0


def test_append_read_reboot():
    dev, log = fresh()
    fill(log, 5)
    assert seqs(log) == [1, 2, 3, 4, 5]
    assert log.writes == 5 and log.bytes_written == 160 and log.erases == 0
    log2 = reboot(dev)
    assert log2.next_seq == 6
    assert log2.last_record() == rec(5)
    assert check_contiguous(log2) == [1, 2, 3, 4, 5]
    assert log2.erases == 0  # a clean boot erases nothing


def test_wrap_keeps_capacity():
    dev, log = fresh()
    for n in range(1, 101):
        log.append(rec(n))
        s = check_contiguous(log) if n % 13 == 0 else None
        if s is not None and n > (NB - 1) * R:
            assert log.capacity <= len(s) <= (NB - 1) * R - 1
    assert log.writes == 100
    assert log.erases == 100 // R  # one eviction per filled block
    s = check_contiguous(log)
    assert s[-1] == 100 and len(s) >= log.capacity
    log2 = reboot(dev)
    assert check_contiguous(log2) == s
    assert log2.last_record() == rec(100)
    assert log2.erases == 0


def test_every_boot_point():
    # Reboot after each append, across several wraps: recovery always agrees.
    dev, log = fresh()
    for n in range(1, 70):
        log = reboot(dev)
        assert log.next_seq == n
        log.append(rec(n))
        assert log.oldest_seq == reboot(dev).oldest_seq
    check_contiguous(reboot(dev))


def test_read_from_seq_and_count():
    dev, log = fresh()
    fill(log, 90)
    oldest = log.oldest_seq
    assert oldest > 1
    assert seqs(log, 80, 5) == [80, 81, 82, 83, 84]
    assert seqs(log, 1, 3) == [oldest, oldest + 1, oldest + 2]
    assert seqs(log, 90) == [90]
    assert seqs(log, 91) == []
    assert seqs(log, None, 0) == []
    assert seqs(log, oldest + R + 1) == list(range(oldest + R + 1, 91))


def test_rejects_bad_records():
    dev, log = fresh()
    fill(log, 2)
    assert raises(EventLogError, log.append, rec(3)[:31])
    bad = bytearray(rec(3))
    bad[10] ^= 1
    assert raises(EventLogError, log.append, bytes(bad))
    assert raises(EventLogError, log.append, rec(5))
    assert raises(EventLogError, log.append, rec(2))
    assert log.writes == 2
    log.append(rec(3))
    assert check_contiguous(reboot(dev)) == [1, 2, 3]


def test_torn_head_is_skipped_not_reused():
    dev, log = fresh()
    fill(log, 3)
    a = slot_addr(0, 3)
    dev.data[a : a + 32] = b"\x00" * 12 + b"\xff" * 20  # torn write of seq 4
    log = reboot(dev)
    assert log.next_seq == 4
    assert check_contiguous(log) == [1, 2, 3]
    log.append(rec(4))
    assert dev.data[a : a + 12] == b"\x00" * 12  # the torn slot is left alone
    b = slot_addr(0, 4)
    assert dev.data[b : b + 32] == rec(4)
    assert check_contiguous(reboot(dev)) == [1, 2, 3, 4]


def test_torn_first_slot_of_a_block():
    dev, log = fresh()
    fill(log, R)  # block 0 full; block 1 is next
    a = slot_addr(1, 0)
    dev.data[a : a + 32] = bytes(32)
    log = reboot(dev)
    assert log.next_seq == R + 1
    log.append(rec(R + 1))
    assert dev.data[slot_addr(1, 1) : slot_addr(1, 1) + 32] == rec(R + 1)
    log = reboot(dev)  # the head is found behind a damaged first slot
    assert log.next_seq == R + 2
    assert log.last_record() == rec(R + 1)
    fill(log, 3 * R)
    assert check_contiguous(reboot(dev))[-1] == 3 * R


def test_interrupted_eviction_is_redone():
    dev, log = fresh()
    fill(log, 4 * R + R - 1)  # wrapped; block 4 has one slot left
    assert log.count > 0
    # The write that fills block 4 lands, then power fails while erasing block
    # 0 (4 + 2 mod 6): half of it still holds old records.
    a = slot_addr(4, R - 1)
    dev.data[a : a + 32] = rec(5 * R)
    for i in range(0, BS // 2):
        dev.data[i] = 0xFF
    log = reboot(dev)
    assert log.next_seq == 5 * R + 1
    assert log.erases == 1  # the eviction, done again
    assert bytes(dev.data[0:BS]) == b"\xff" * BS
    s = check_contiguous(log)
    assert s[-1] == 5 * R and len(s) == log.capacity
    fill(log, 8 * R)
    check_contiguous(reboot(dev))


def test_dirty_next_block_is_erased_at_boot():
    dev, log = fresh()
    fill(log, 3)
    a = slot_addr(1, 5)
    dev.data[a] = 0x12  # block 1 must be erased: the head will move into it
    log = reboot(dev)
    assert log.erases == 1 and dev.data[a] == 0xFF
    fill(log, 2 * R)
    assert check_contiguous(reboot(dev)) == list(range(1, 2 * R + 1))


def test_garbage_region_and_format():
    dev = RamBlockDevice(BS, NB)
    for i in range(len(dev.data)):
        dev.data[i] = (i * 37 + 11) & 0xFF
    log = reboot(dev)
    assert log.next_seq == 1 and list(log.read()) == []
    fill(log, 2 * R + 3)
    assert check_contiguous(reboot(dev)) == list(range(1, 2 * R + 4))
    log.format()
    assert log.next_seq == 1 and log.count == 0 and log.erases >= NB
    fill(log, 3)
    assert check_contiguous(reboot(dev)) == [1, 2, 3]


def test_bigger_records_and_geometry_checks():
    dev = RamBlockDevice(BS, 4)
    log = EventLog(dev, 64)
    log.recover()
    for n in range(1, 30):
        log.append(rec(n, 64))
    log = reboot(dev, 64)
    got = list(log.read())
    assert got[-1] == rec(29, 64)
    assert len(got) >= log.capacity == 2 * (BS // 64)
    assert raises(EventLogError, EventLog, RamBlockDevice(BS, 2))
    assert raises(EventLogError, EventLog, RamBlockDevice(BS, 4), 48)
