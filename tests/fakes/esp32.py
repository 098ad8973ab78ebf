# Fake `esp32`: Partition over a 4 MB fake NOR flash. The partition table is
# the test's (set_table); the default is MicroPython's stock 4 MB layout,
# which has no event-log partition.
from fakes.flash import NorFlash, Region

FLASH = NorFlash(4 * 1024 * 1024)
TYPE_APP = 0
TYPE_DATA = 1
SUBTYPES = {"factory": 0x00, "nvs": 0x02, "phy": 0x01, "fat": 0x81, "undefined": 0x06}

# (label, type, subtype, offset, size)
STOCK_4MB = (
    ("nvs", TYPE_DATA, 0x02, 0x9000, 0x6000),
    ("phy_init", TYPE_DATA, 0x01, 0xF000, 0x1000),
    ("factory", TYPE_APP, 0x00, 0x10000, 0x1F0000),
    ("vfs", TYPE_DATA, 0x81, 0x200000, 0x200000),
)
_table = list(STOCK_4MB)


def set_table(rows):
    """rows: (label, type, subtype, offset, size), as a partitions.csv says."""
    global _table
    _table = list(rows)


def parse_csv(text):
    """Rows of a partitions.csv ('# ' comment lines and blank lines skipped)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = [x.strip() for x in line.split(",")]
        ptype = TYPE_APP if f[1] == "app" else TYPE_DATA
        sub = SUBTYPES[f[2]] if f[2] in SUBTYPES else int(f[2], 0)
        rows.append((f[0], ptype, sub, int(f[3], 0), int(f[4], 0)))
    return rows


class Partition(Region):
    BOOT = 0
    RUNNING = 1
    TYPE_APP = TYPE_APP
    TYPE_DATA = TYPE_DATA

    def __init__(self, id, block_size=4096):
        row = None
        for r in _table:
            if r[0] == id:
                row = r
        if row is None:
            raise ValueError("partition not found")
        Region.__init__(self, FLASH, row[3], row[4], block_size)
        self._row = row

    def info(self):
        r = self._row
        return (r[1], r[2], r[3], r[4], r[0], False)

    @staticmethod
    def find(type=TYPE_APP, subtype=0xFF, label=None):
        out = []
        for r in _table:
            if r[1] == type and (subtype == 0xFF or r[2] == subtype) and (label is None or r[0] == label):
                out.append(Partition(r[0]))
        return out
