# The unix port's own calls to the board around it (MicroPython and CPython
# code: simulator/mpy/proxy.py makes them, simulator/mpyport.py answers them
# with the runner's `port_NAME`). Not HAL methods (those are
# firmware.hal.BOARD_CALLS): "boot CAUSE", "reset", "cut" (the flash's power
# cut), "repl closed|open", "heap FREE ALLOC", "flash N CUT_PENDING" (N more
# program/erase operations; CUT_PENDING null from a flash that takes no
# cuts), "poll" (fetch waiting directives).
PORT_CALLS = ("boot", "reset", "cut", "repl", "heap", "flash", "poll")
