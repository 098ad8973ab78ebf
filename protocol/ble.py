# The lock's BLE GATT service (docs/PROTOCOL.md section 3). BLE is an
# untrusted pipe: the frames of protocol/frames.py travel unchanged, split
# across writes and notifications of at most ATT_MTU - 3 bytes and reassembled
# by their zero terminator.
SERVICE_UUID = "7c500001-7923-4b3e-9380-7f3690ae567f"
RX_UUID = "7c500002-7923-4b3e-9380-7f3690ae567f"  # key -> lock: write (without response)
TX_UUID = "7c500003-7923-4b3e-9380-7f3690ae567f"  # lock -> key: notify
DEFAULT_ATT_MTU = 23  # until the central negotiates more
LOCAL_NAME_PREFIX = "NKL-"  # advertised name: prefix + lock id (or "NKL-new")


def chunks(frame, att_mtu=DEFAULT_ATT_MTU):
    """Split one encoded frame into GATT-sized pieces, in order."""
    size = max(1, att_mtu - 3)
    return [frame[i:i + size] for i in range(0, len(frame), size)]
