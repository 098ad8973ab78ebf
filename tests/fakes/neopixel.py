# Fake `neopixel`: NeoPixel records what is written.
class NeoPixel:
    def __init__(self, pin, n, bpp=3, timing=1):
        self.pin = pin
        self.n = n
        self.bpp = bpp
        self.pixels = [(0,) * bpp for _ in range(n)]
        self.writes = []

    def __len__(self):
        return self.n

    def __setitem__(self, i, v):
        v = tuple(v)
        if len(v) != self.bpp or not all(0 <= c <= 255 for c in v):
            raise ValueError("pixel")
        self.pixels[i] = v

    def __getitem__(self, i):
        return self.pixels[i]

    def fill(self, v):
        for i in range(self.n):
            self[i] = v

    def write(self):
        self.writes.append(list(self.pixels))
