# boot.py of a production image of the lock: frozen by boards/manifest.py so
# that a boot.py on the filesystem is never run (MicroPython runs a frozen
# boot.py in its place). It does nothing: the port's own frozen _boot.py has
# already mounted the filesystem, and main.py starts the lock.
